// Entry point: hash routing (#/compare, #/routes, #/pipelines[/name],
// #/usage, #/runs[/id]), the key prompt, and the shared catalog cache.
// Each page module exports render(root, ctx) and may return a cleanup function.

import { api, describeError, getKey, setKey, setUnauthorizedHandler } from "./api.js";
import { banner, h, loading, replace } from "./ui.js";
import * as compare from "./compare.js";
import * as routes from "./routes.js";
import * as pipelines from "./pipelines.js";
import * as usage from "./usage.js";
import * as runs from "./runs.js";

const PAGES = { compare, routes, pipelines, usage, runs };
const CATALOG_TTL_MS = 30_000;

const state = {
  session: null,
  cleanup: null,
  controller: null,
  seq: 0,
  catalog: null, // {at, promise}
};

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [page, ...rest] = raw.split("/").filter(Boolean);
  return { page: PAGES[page] ? page : "compare", args: rest.map(decodeURIComponent) };
}

function catalog() {
  const now = Date.now();
  if (!state.catalog || now - state.catalog.at > CATALOG_TTL_MS) {
    const promise = api("/api/v1/catalog");
    promise.catch(() => { state.catalog = null; });
    state.catalog = { at: now, promise };
  }
  return state.catalog.promise;
}

async function refreshSession() {
  state.session = await api("/api/v1/dashboard/session");
  document.getElementById("version").textContent = state.session.version ? `v${state.session.version}` : "";
  renderAuth();
  return state.session;
}

function renderAuth() {
  const el = document.getElementById("auth");
  const sess = state.session;
  if (!sess || !sess.auth_required) {
    replace(el);
    return;
  }
  if (!sess.authenticated) {
    replace(el, h("button", { class: "btn small", type: "button", onclick: () => askForKey() }, "Enter key"));
    return;
  }
  replace(el,
    h("span", { title: sess.admin ? "admin key: runtime changes allowed" : "API key: read and run, no admin actions" },
      sess.admin ? "admin key" : "API key"),
    h("button", {
      class: "btn small", type: "button",
      onclick: () => { setKey(""); state.catalog = null; refreshSession().then(show); },
    }, "Sign out"));
}

let keyPrompt = null; // the pending prompt: asking twice returns the same promise

/** Ask for a key until the gateway accepts one. */
function askForKey(message = "") {
  const dialog = document.getElementById("key-dialog");
  const form = document.getElementById("key-form");
  const input = document.getElementById("key-input");
  const error = document.getElementById("key-error");
  error.hidden = !message;
  error.textContent = message;
  if (!dialog.open) dialog.showModal(); // Escape closes it; "Enter key" opens it again
  input.focus();
  if (keyPrompt) return keyPrompt;
  input.value = "";
  keyPrompt = new Promise((resolve) => {
    const onSubmit = async (ev) => {
      ev.preventDefault();
      setKey(input.value.trim());
      state.catalog = null;
      try {
        const sess = await refreshSession();
        if (sess.authenticated) {
          form.removeEventListener("submit", onSubmit);
          dialog.close();
          keyPrompt = null;
          resolve(sess);
          return;
        }
        error.textContent = "The gateway did not accept this key.";
      } catch (err) {
        error.textContent = describeError(err);
      }
      error.hidden = false;
      input.select();
    };
    form.addEventListener("submit", onSubmit);
  });
  return keyPrompt;
}

async function show() {
  const seq = ++state.seq;
  if (state.cleanup) { try { state.cleanup(); } catch { /* a page's cleanup must not stop navigation */ } }
  state.cleanup = null;
  if (state.controller) state.controller.abort();
  const controller = new AbortController();
  state.controller = controller;

  const { page, args } = parseHash();
  for (const a of document.querySelectorAll("#nav a")) {
    const active = a.dataset.page === page;
    a.classList.toggle("active", active);
    if (active) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  closeNav();
  document.title = `${page[0].toUpperCase()}${page.slice(1)} · polyroute`;

  // Each page draws into its own root: a late answer for a page already left
  // lands in a detached node instead of over the new page.
  const view = document.getElementById("view");
  const root = h("div", { class: "page", "data-page": page });
  replace(view, root);
  replace(root, loading());

  if (state.session && state.session.auth_required && !state.session.authenticated) {
    replace(root, banner("warn", h("p", null, "This gateway requires an API key."),
      h("p", null, h("button", { class: "btn small", type: "button", onclick: () => askForKey() }, "Enter key"))));
    await askForKey();
    if (seq === state.seq) show();
    return;
  }
  const ctx = {
    session: state.session,
    args,
    signal: controller.signal,
    catalog,
    isCurrent: () => seq === state.seq,
    refreshSession,
  };
  try {
    const cleanup = await PAGES[page].render(root, ctx);
    if (typeof cleanup === "function") {
      if (seq === state.seq) state.cleanup = cleanup;
      else cleanup();
    }
  } catch (err) {
    if (err && err.name === "AbortError") return;
    if (seq === state.seq) replace(root, banner("err", h("p", null, describeError(err))));
  }
}

function closeNav() {
  const nav = document.getElementById("nav");
  nav.classList.remove("open");
  document.getElementById("nav-toggle").setAttribute("aria-expanded", "false");
}

function setupNav() {
  const toggle = document.getElementById("nav-toggle");
  const nav = document.getElementById("nav");
  toggle.addEventListener("click", () => {
    const open = !nav.classList.contains("open");
    nav.classList.toggle("open", open);
    toggle.setAttribute("aria-expanded", String(open));
  });
}

async function start() {
  setupNav();
  setUnauthorizedHandler(() => {
    // A key that stopped working (rotated, signed out elsewhere): ask again.
    if (state.session && state.session.auth_required) {
      if (getKey()) setKey("");
      state.session = { ...state.session, authenticated: false, admin: false };
      renderAuth();
      askForKey("The gateway refused the key; enter a valid one.").then(show);
    }
  });
  try {
    await refreshSession();
  } catch (err) {
    replace(document.getElementById("view"), banner("err", h("p", null, describeError(err))));
    return;
  }
  window.addEventListener("hashchange", show);
  if (!location.hash) history.replaceState(null, "", "#/compare");
  show();
}

start();
