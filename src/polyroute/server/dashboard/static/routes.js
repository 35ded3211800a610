// Routes: every route's resolved pool, strategy and parameters with live
// cooldown state per model (refreshed every few seconds), credential status
// per provider with a banner linking the key page when a key is missing, and
// the loaded configuration's validation messages.

import { api, describeError } from "./api.js";
import {
  badge, banner, fmtSeconds, h, keyLink, pageHead, replace, section, table, withoutUrl,
} from "./ui.js";

const REFRESH_MS = 3000;
const LEVEL = { error: ["err", "error"], warning: ["warn", "warning"], info: ["info", "info"] };

function modelState(m) {
  if (m.cooling_for > 0) {
    return h("span", { class: "state", "data-state": "cooling" }, h("span", { class: "dot err" }),
      h("span", null, "cooling down ", h("span", { class: "muted small nowrap" }, `${fmtSeconds(m.cooling_for)} left`)));
  }
  if (m.failures > 0) {
    return h("span", { class: "state", "data-state": "failing" }, h("span", { class: "dot warn" }),
      `${m.failures} recent failure${m.failures > 1 ? "s" : ""}`);
  }
  return h("span", { class: "state", "data-state": "healthy" }, h("span", { class: "dot ok" }), "healthy");
}

function paramChips(r) {
  const chips = Object.entries(r.params || {}).map(([k, v]) => h("span", { class: "chip plain" }, `${k} ${v}`));
  if (r.timeout != null) chips.push(h("span", { class: "chip plain" }, `timeout ${r.timeout} s`));
  if (r.max_fallbacks != null && r.strategy !== "single") chips.push(h("span", { class: "chip plain" }, `max fallbacks ${r.max_fallbacks}`));
  return chips;
}

function routeCard(r, usable) {
  const weighted = r.strategy === "loadbalance" || r.models.some((m) => m.weight !== 1);
  const cooling = r.models.filter((m) => m.cooling_for > 0).length;
  const failing = r.models.filter((m) => m.failures > 0).length;
  const status = cooling === r.models.length && r.models.length
    ? badge("all cooling down", "err")
    : cooling ? badge(`${cooling} cooling`, "err") : failing ? badge(`${failing} failing`, "warn") : null;
  // Three narrow columns so a card stays readable at a third of the page:
  // the model with its provider under it, the state with the last error under it.
  const cols = [{ label: "#" }, { label: "model" }];
  if (weighted) cols.push({ label: "weight", num: true });
  cols.push({ label: "state" });
  const rows = r.models.map((m, i) => {
    const cells = [
      String(i + 1),
      h("div", null, h("div", { class: "mono" }, m.id),
        h("div", { class: "row small muted" }, m.provider, usable[m.provider] === false ? badge("no key", "warn") : null)),
    ];
    if (weighted) cells.push(String(m.weight));
    cells.push(h("div", null, modelState(m),
      m.last_error ? h("div", { class: "cell-error small", title: m.last_error }, m.last_error) : null));
    return h("tr", { "data-model": m.id, "data-state": m.cooling_for > 0 ? "cooling" : m.failures > 0 ? "failing" : "healthy" },
      cells.map((c, j) => h("td", { class: cols[j].num ? "num" : null }, c)));
  });
  return h("article", { class: "card route-card", "data-route": r.route },
    h("header", null, h("span", { class: "title" }, r.route), h("span", { class: "row" }, status, badge(r.strategy, "accent"))),
    h("div", { class: "body" },
      h("div", { class: "chips" }, paramChips(r)),
      (r.warnings || []).length ? h("ul", { class: "warnings" }, r.warnings.map((w) => h("li", null, w))) : null,
      h("div", { class: "pool" }, table(cols, rows, { compact: true, caption: `pool of ${r.route}` }))));
}

export async function render(root, ctx) {
  const [providers, validation, initial] = await Promise.all([
    api("/api/v1/providers", { signal: ctx.signal }),
    api("/api/v1/config/validation", { signal: ctx.signal }),
    api("/api/v1/routes", { signal: ctx.signal }),
  ]);
  if (!ctx.isCurrent()) return undefined;
  const usable = Object.fromEntries(providers.providers.map((p) => [p.provider, p.usable]));
  const byName = Object.fromEntries(providers.providers.map((p) => [p.provider, p]));

  // Banners: a provider some route uses whose key is missing.
  const inUse = new Set(initial.routes.flatMap((r) => r.models.map((m) => m.provider)));
  const missing = [...inUse].filter((p) => byName[p] && !byName[p].usable);
  const keyBanners = missing.map((p) => {
    const st = byName[p];
    return banner("warn", h("p", null, h("strong", null, p), ` has no API key: set `, h("code", null, st.key_variable || "its key variable"),
      " and reload the configuration. Routes fall back past its models until then. ", keyLink(st.key_page)));
  });

  const filter = h("input", { type: "search", placeholder: "Filter routes or models…", "aria-label": "Filter routes" });
  const onlyProblems = h("input", { type: "checkbox", id: "only-problems" });
  const live = h("span", { class: "live", id: "routes-live" });
  const coolingBox = h("div", { id: "cooling-summary" });
  const cards = h("div", { class: "cards route-cards", id: "route-cards" });

  const messages = validation.messages.length
    ? h("ul", { class: "messages", id: "config-messages" }, validation.messages.map((m) => {
      const [kind, label] = LEVEL[m.level] || ["info", m.level];
      return h("li", { "data-level": m.level }, badge(label, kind),
        h("div", null, h("div", { class: "path" }, m.path), h("div", null, withoutUrl(m.message, m.key_page), " ", keyLink(m.key_page))));
    }))
    : h("p", { class: "muted" }, "No problems found in the loaded configuration.");

  const providerTable = table(
    [{ label: "provider" }, { label: "wire" }, { label: "key variable" }, { label: "status" }, { label: "base URL", class: "hide-narrow" }, { label: "" }],
    // Providers some route uses first, then the rest, each alphabetically.
    providers.providers.slice().sort((a, b) => Number(inUse.has(b.provider)) - Number(inUse.has(a.provider)) || a.provider.localeCompare(b.provider))
      .map((p) => h("tr", { "data-provider": p.provider },
      h("td", null, h("strong", null, p.provider), inUse.has(p.provider) ? h("span", { class: "faint small" }, " · in use") : null),
      h("td", null, p.wire),
      h("td", null, p.key_variable ? h("code", null, p.key_variable) : h("span", { class: "faint" }, "—")),
      h("td", null, p.key_present ? badge("key set", "ok") : !p.key_required ? badge("no key needed", "ok") : badge("missing", "warn")),
      h("td", { class: "hide-narrow small muted" }, p.base_url || "—"),
      h("td", null, !p.usable ? keyLink(p.key_page) : null))),
  );

  replace(root,
    pageHead("Routes", `Resolved pools with live cooldown state · config: ${validation.source} (generation ${validation.generation})`, live),
    h("div", { id: "key-banners" }, keyBanners),
    coolingBox,
    section("Routes",
      h("div", { class: "row", id: "route-filters" }, h("div", { class: "grow" }, filter),
        h("label", { class: "row small" }, onlyProblems, "only routes with failures")),
      h("div", { class: "section" }, cards)),
    section("Providers", h("div", { class: "panel" }, providerTable)),
    section("Configuration checks", h("div", { class: "panel" }, messages)));

  let data = initial;
  let lastUpdate = new Date();
  let failed = null;

  function draw() {
    const q = filter.value.trim().toLowerCase();
    const routes = data.routes.filter((r) => {
      const hasProblem = r.models.some((m) => m.cooling_for > 0 || m.failures > 0);
      if (onlyProblems.checked && !hasProblem) return false;
      return !q || r.route.toLowerCase().includes(q) || r.models.some((m) => m.id.toLowerCase().includes(q));
    });
    replace(cards, routes.length ? routes.map((r) => routeCard(r, usable)) : h("p", { class: "muted" }, "No route matches."));
    // One line per model cooling down, whatever route it is in.
    const cooling = new Map();
    for (const r of data.routes) for (const m of r.models) if (m.cooling_for > 0) cooling.set(m.id, m);
    replace(coolingBox, cooling.size
      ? banner("err", h("p", null, h("strong", null, `${cooling.size} model${cooling.size > 1 ? "s" : ""} cooling down: `),
        [...cooling.values()].map((m, i) => [i ? ", " : "", h("code", null, m.id), ` (${fmtSeconds(m.cooling_for)} left)`])))
      : null);
    replace(live, failed ? badge("refresh failed", "warn") : h("span", { class: "dot ok" }),
      failed ? ` ${failed}` : ` Live · updated ${lastUpdate.toLocaleTimeString("en-GB")}`);
  }
  filter.addEventListener("input", draw);
  onlyProblems.addEventListener("change", draw);
  draw();

  // Poll the live state; a slow answer never overlaps the next poll.
  let stopped = false;
  let timer = null;
  async function poll() {
    if (stopped) return;
    try {
      data = await api("/api/v1/routes", { signal: ctx.signal });
      lastUpdate = new Date();
      failed = null;
    } catch (err) {
      if (err && err.name === "AbortError") return;
      failed = describeError(err);
    }
    if (stopped) return;
    draw();
    timer = setTimeout(poll, REFRESH_MS);
  }
  timer = setTimeout(poll, REFRESH_MS);
  return () => { stopped = true; clearTimeout(timer); };
}
