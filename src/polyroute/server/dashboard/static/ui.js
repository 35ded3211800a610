// Small DOM helpers and number formats shared by the pages. Every piece of
// text from the gateway goes into the page as a text node (never as HTML).

const SVG_NS = "http://www.w3.org/2000/svg";

function append(el, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child) append(el, c);
  } else if (child instanceof Node) {
    el.appendChild(child);
  } else {
    el.appendChild(document.createTextNode(String(child)));
  }
}

function setProps(el, props) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.setAttribute("class", Array.isArray(v) ? v.filter(Boolean).join(" ") : v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "value" && "value" in el) el.value = v;
    else if (k === "checked" || k === "disabled" || k === "selected" || k === "open") el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
}

/** h("div", {class: "x", onclick: fn}, "text", child, [more]) → an HTML element. */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

/** The same for SVG elements. */
export function s(tag, props, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setProps(el, props);
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

// -- formats -----------------------------------------------------------------

export function fmtCost(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  if (v === 0) return "$0";
  const digits = v < 0.01 ? 6 : v < 1 ? 4 : 2;
  return `$${v.toFixed(digits)}`;
}

export function fmtSeconds(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  if (v < 1) return `${Math.round(v * 1000)} ms`;
  if (v < 60) return `${v.toFixed(2)} s`;
  return `${Math.floor(v / 60)} min ${Math.round(v % 60)} s`;
}

export function fmtInt(v) {
  if (v === null || v === undefined) return "—";
  return Number(v).toLocaleString("en-US");
}

export function fmtPct(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  return `${(v * 100).toFixed(1)}%`;
}

export function fmtTime(value) {
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) return "—";
  return d.toLocaleString("en-GB", {
    year: "numeric", month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

export function fmtAgo(value) {
  const d = value instanceof Date ? value : new Date(value);
  const secs = Math.round((Date.now() - d.getTime()) / 1000);
  if (Number.isNaN(secs)) return "";
  if (secs < 5) return "just now";
  if (secs < 60) return `${secs} s ago`;
  if (secs < 3600) return `${Math.round(secs / 60)} min ago`;
  if (secs < 86400) return `${Math.round(secs / 3600)} h ago`;
  return `${Math.round(secs / 86400)} d ago`;
}

// -- building blocks ---------------------------------------------------------

/** A link target from configuration, only if it is a plain web address. */
export function safeUrl(url) {
  return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
}

/** A gateway message without the key page URL it spells out for API clients
 * (the page shows a link instead). */
export function withoutUrl(message, url) {
  return url ? String(message).replace(` (get one at ${url})`, "") : message;
}

/** "Get a key →" for a provider's key page (opens in a new tab), or nothing. */
export function keyLink(url) {
  const href = safeUrl(url);
  return href ? h("a", { href, target: "_blank", rel: "noopener noreferrer" }, "Get a key →") : null;
}

export function badge(text, kind = "") {
  return h("span", { class: ["badge", kind] }, text);
}

export function spinner(label = "Loading") {
  return h("span", { class: "spinner", role: "progressbar", "aria-label": label });
}

export function loading(text = "Loading…") {
  return h("div", { class: "row muted" }, spinner(), text);
}

/** A coloured notice; `kind` is ok | info | warn | err. */
export function banner(kind, ...content) {
  const icon = { ok: "✓", info: "i", warn: "!", err: "✕" }[kind] || "i";
  return h("div", { class: ["banner", kind], role: kind === "err" ? "alert" : "status" },
    h("span", { class: "icon", "aria-hidden": "true" }, icon),
    h("div", null, ...content));
}

export function empty(title, ...text) {
  return h("div", { class: "empty" }, h("h3", null, title), ...text.map((t) => h("p", null, t)));
}

export function stat(label, value, extra) {
  return h("div", { class: "stat" }, h("div", { class: "label" }, label), h("div", { class: "value" }, value), extra);
}

/** A small labelled number inside a card; `key` names it for tests and styles. */
export function figure(key, label, value, title = null) {
  return h("div", { class: "figure", "data-figure": key },
    h("div", { class: "label" }, label), h("div", { class: "value", title }, value));
}

export function pageHead(title, subtitle, ...actions) {
  return h("div", { class: "page-head" },
    h("div", null, h("h1", null, title), subtitle ? h("p", null, subtitle) : null),
    actions.length ? h("div", { class: "row" }, ...actions) : null);
}

export function section(title, ...content) {
  return h("section", { class: "section" }, h("div", { class: "section-head" }, h("h2", null, title)), ...content);
}

export function table(columns, rows, { compact = false, caption = null } = {}) {
  // columns: [{label, num?, class?}]; rows: arrays of cells (nodes or text) or <tr> elements.
  const head = h("tr", null, columns.map((c) => h("th", { class: [c.num && "num", c.class], scope: "col" }, c.label)));
  const body = rows.map((r) => (r instanceof Node ? r : h("tr", null, r.map((cell, i) =>
    h("td", { class: [columns[i] && columns[i].num && "num", columns[i] && columns[i].class] }, cell)))));
  return h("div", { class: "table-wrap" },
    h("table", { class: compact ? "compact" : null }, caption ? h("caption", { class: "sr-only" }, caption) : null,
      h("thead", null, head), h("tbody", null, body)));
}

/** The attempts of a call (router Attempt.to_dict rows) as a compact table. */
export function attemptsTable(attempts) {
  if (!attempts || !attempts.length) return h("p", { class: "muted small" }, "No attempts recorded.");
  return table(
    [{ label: "model" }, { label: "outcome" }, { label: "trigger" }, { label: "retries", num: true },
      { label: "status", num: true }, { label: "latency", num: true }, { label: "error" }],
    attempts.map((a) => [
      h("span", { class: "mono" }, a.model || "—"),
      badge(a.outcome || "—", a.outcome === "ok" ? "ok" : a.outcome === "skipped" ? "" : "err"),
      a.trigger || "—",
      String(a.retries ?? 0),
      a.status == null ? "—" : String(a.status),
      fmtSeconds(a.latency),
      a.error ? h("span", { class: "cell-error" }, a.error) : "—",
    ]),
    { compact: true },
  );
}

/** The same attempts as a list, for cards too narrow for a table. */
export function attemptsList(attempts) {
  if (!attempts || !attempts.length) return h("p", { class: "muted small" }, "No attempts recorded.");
  return h("ol", { class: "attempts" }, attempts.map((a) => {
    const facts = [
      a.trigger,
      a.status == null ? null : `HTTP ${a.status}`,
      a.retries ? `${a.retries} retr${a.retries === 1 ? "y" : "ies"}` : null,
      a.latency == null ? null : fmtSeconds(a.latency),
    ].filter(Boolean).join(" · ");
    return h("li", { "data-outcome": a.outcome },
      h("div", { class: "row" }, h("span", { class: "mono" }, a.model || "—"),
        badge(a.outcome || "—", a.outcome === "ok" ? "ok" : a.outcome === "skipped" ? "" : "err"),
        h("span", { class: "muted small" }, facts)),
      a.error ? h("div", { class: "cell-error small" }, a.error) : null);
  }));
}

let toastTimer = null;
export function toast(text) {
  const el = document.getElementById("toast");
  if (!el) return;
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 2600);
}

/** Copy text to the clipboard; works without a secure context too. */
export async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    /* fall through to the selection copy */
  }
  const area = h("textarea", { class: "sr-only", "aria-hidden": "true" });
  area.value = text;
  document.body.appendChild(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

/** Offer `text` as a file download (a Blob: no network involved). */
export function download(filename, text, type = "application/yaml") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h("a", { href: url, download: filename });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function debounce(fn, ms) {
  let t = null;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

/** A tiny YAML writer for the snippets the pages build themselves. */
export function toYaml(value, indent = 0) {
  const pad = " ".repeat(indent);
  const scalar = (v) => {
    if (v === null || v === undefined) return "null";
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    const str = String(v);
    return /^[A-Za-z0-9_./@-][A-Za-z0-9_./@: -]*$/.test(str) && !/^(true|false|null|yes|no|on|off|~)$/i.test(str) && !/: |:$| $/.test(str) && !/^\d/.test(str)
      ? str
      : JSON.stringify(str);
  };
  if (Array.isArray(value)) {
    if (!value.length) return `${pad}[]\n`;
    return value.map((item) => {
      if (item && typeof item === "object") {
        const inner = toYaml(item, indent + 2).replace(/^\s+/, "");
        return `${pad}- ${inner}`;
      }
      return `${pad}- ${scalar(item)}\n`;
    }).join("");
  }
  if (value && typeof value === "object") {
    return Object.entries(value).map(([k, v]) => {
      if (v && typeof v === "object" && (Array.isArray(v) ? v.length : Object.keys(v).length)) {
        return `${pad}${scalar(k)}:\n${toYaml(v, indent + 2)}`;
      }
      if (v && typeof v === "object") return `${pad}${scalar(k)}: ${Array.isArray(v) ? "[]" : "{}"}\n`;
      return `${pad}${scalar(k)}: ${scalar(v)}\n`;
    }).join("");
  }
  return `${pad}${scalar(value)}\n`;
}
