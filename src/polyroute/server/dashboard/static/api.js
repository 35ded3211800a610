// The dashboard's only way to talk to the gateway: same-origin fetch with the
// session's key as a Bearer token. Errors come back in OpenAI's shape
// ({"error": {"message", "type", "param", "code"}}) and become ApiError.

const KEY_STORAGE = "polyroute.key";

/** An HTTP error from the gateway, with its status and the error body's fields. */
export class ApiError extends Error {
  constructor(status, message, { param = null, code = null, body = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.param = param;
    this.code = code;
    this.body = body;
  }

  get needsAdmin() {
    return this.status === 403;
  }
}

export function getKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return ""; // storage can be disabled; then the key lives for this page only
  }
}

let memoryKey = "";

export function setKey(key) {
  memoryKey = key || "";
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    /* fall back to memoryKey */
  }
}

function currentKey() {
  return getKey() || memoryKey;
}

// app.js installs this: it asks for a key again when one is refused.
let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/**
 * Call the gateway. `body` (an object) is sent as JSON; the answer is parsed
 * as JSON. Non-2xx answers throw ApiError, except statuses listed in `accept`
 * (a step preview that failed answers 502 with a full step result).
 */
export async function api(path, { method = "GET", body, signal, accept = [] } = {}) {
  const headers = { Accept: "application/json" };
  const key = currentKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
    });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(0, "the gateway did not answer (is it still running?)");
  }
  const text = await resp.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (resp.ok || accept.includes(resp.status)) return data;
  const err = (data && data.error) || {};
  const message =
    err.message || (data && data.detail) || `${resp.status} ${resp.statusText || "error"}`;
  const error = new ApiError(resp.status, message, { param: err.param, code: err.code, body: data });
  if (resp.status === 401) onUnauthorized(error);
  throw error;
}

/** A friendly one-line text for an error, naming what to do about 401/403. */
export function describeError(err) {
  if (!(err instanceof ApiError)) return String((err && err.message) || err);
  if (err.status === 401) return "The gateway refused the key: enter a valid API key.";
  if (err.status === 403) return `Not allowed: ${err.message} (this needs an admin key from POLYROUTE_ADMIN_KEYS).`;
  return err.param ? `${err.message} (${err.param})` : err.message;
}
