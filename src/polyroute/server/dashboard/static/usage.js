// Usage: cost over time by model / tier / step (stacked bars), latency
// p50/p95/p99, cache hit and fallback rates, active alerts, totals per group
// and the latest calls with their attempts. Reads /api/v1/usage, /alerts,
// /calls and the dashboard's /api/v1/usage/series; when the gateway records
// no usage it says so instead of failing.

import { ApiError, api, describeError } from "./api.js";
import { lineChart, stackedBars } from "./charts.js";
import {
  attemptsTable, badge, banner, empty, fmtAgo, fmtCost, fmtInt, fmtPct, fmtSeconds, fmtTime, h,
  loading, pageHead, replace, section, stat, table,
} from "./ui.js";

const WINDOWS = { "15m": 15, "1h": 12, "6h": 24, "24h": 24, "7d": 28 };
const GROUPS = ["model", "tier", "step", "provider", "route", "pipeline"];
const REFRESH_MS = 15000;
const MAX_SERIES = 8;
const prefs = { since: "1h", by: "model" };

function disabledNotice() {
  return h("div", { class: "panel", id: "usage-disabled" }, empty("Usage store not enabled",
    "This gateway does not record usage, so there is nothing to chart yet.",
    "Usage recording stores one row per call in the database named by usage.store (SQLite by default)."));
}

function isDisabled(err) {
  return err instanceof ApiError && err.status === 404;
}

function chartPanel(title, chart) {
  return h("section", { class: "panel", "aria-label": title }, h("h3", { class: "panel-title" }, title), chart);
}

function costSeries(series) {
  // The top groups by cost get their own colour; the rest share "other".
  const top = series.groups.slice(0, MAX_SERIES);
  const rest = series.groups.slice(MAX_SERIES);
  const out = top.map((g) => ({ name: g, values: series.buckets.map((b) => b.groups[g] || 0) }));
  if (rest.length) {
    out.push({ name: `other (${rest.length})`, values: series.buckets.map((b) => rest.reduce((a, g) => a + (b.groups[g] || 0), 0)) });
  }
  return out;
}

function alertsPanel(data) {
  if (!data.alerts.length) {
    return banner("ok", h("p", null, `No active alerts in this window (thresholds: cost per request over ${fmtCost(data.thresholds.cost_per_request_warning)}, p95 over ${fmtSeconds(data.thresholds.latency_p95_warning)}, fallback rate over ${fmtPct(data.thresholds.fallback_rate_warning)}; judged from ${data.thresholds.min_requests} requests).`));
  }
  const kind = { critical: "err", warning: "warn", info: "info" };
  return h("div", { id: "alerts" }, data.alerts.map((a) => banner(kind[a.level] || "info",
    h("p", null, h("strong", null, `${a.level}: `), a.message),
    h("p", { class: "small" }, `${a.metric}${a.group ? ` (${a.group})` : ""}: ${a.value} against ${a.threshold}`))));
}

function callsTable(calls) {
  if (!calls.length) return h("p", { class: "muted" }, "No calls recorded yet.");
  const rows = [];
  for (const c of calls) {
    const attempts = c.attempts || [];
    const detail = h("tr", { class: "detail-row", hidden: true }, h("td", { colspan: 9 },
      c.error ? h("p", { class: "error-text" }, c.error) : null, attemptsTable(attempts)));
    const toggle = () => { detail.hidden = !detail.hidden; };
    const ok = c.status === "ok";
    rows.push(h("tr", { class: "clickable", "data-call": c.id, onclick: toggle, title: "Show the attempts" },
      h("td", { class: "nowrap" }, h("span", { title: fmtTime(c.time) }, fmtAgo(c.time))),
      h("td", null, h("span", { class: "mono small" }, c.route)),
      h("td", null, h("span", { class: "mono small" }, c.model || "—"), c.step ? h("div", { class: "faint small" }, `${c.pipeline}/${c.step}`) : null),
      h("td", null, badge(ok ? "ok" : c.error_kind || c.status, ok ? "ok" : "err"), c.cache_hit ? [" ", badge("cache", "info")] : null),
      h("td", { class: "num" }, `${fmtInt(c.tokens_in)} → ${fmtInt(c.tokens_out)}`),
      h("td", { class: "num" }, fmtCost(c.cost)),
      h("td", { class: "num" }, fmtSeconds(c.latency)),
      h("td", { class: "num" }, `${c.retries} / ${c.fallbacks}`),
      h("td", { class: "num" }, h("button", { class: "btn small ghost", type: "button", "aria-label": "Show attempts" }, String(attempts.length)))));
    rows.push(detail);
  }
  return table(
    [{ label: "when" }, { label: "route" }, { label: "model" }, { label: "status" }, { label: "tokens", num: true },
      { label: "cost", num: true }, { label: "latency", num: true }, { label: "retries / fallbacks", num: true }, { label: "attempts", num: true }],
    rows);
}

function groupTable(by, rows) {
  if (!rows.length) return h("p", { class: "muted" }, "No calls in this window.");
  const maxCost = Math.max(0.0000001, ...rows.map((r) => r.cost));
  return table(
    [{ label: by }, { label: "requests", num: true }, { label: "errors", num: true }, { label: "cost", num: true },
      { label: "cost / request", num: true }, { label: "p50", num: true }, { label: "p95", num: true }, { label: "p99", num: true },
      { label: "cache hits", num: true }, { label: "fallbacks", num: true }],
    rows.map((r) => {
      const bar = h("div", { class: "bar-fill" });
      bar.style.width = `${Math.max(2, (100 * r.cost) / maxCost)}%`;
      return [
        h("span", { class: "mono small" }, r[by] ?? "(none)"),
        fmtInt(r.count), fmtInt(r.errors),
        h("div", null, fmtCost(r.cost), h("div", { class: "bar-track" }, bar)),
        fmtCost(r.cost_per_request),
        fmtSeconds(r.latency_p50), fmtSeconds(r.latency_p95), fmtSeconds(r.latency_p99),
        fmtPct(r.cache_hit_rate), fmtPct(r.fallback_rate),
      ];
    }));
}

export async function render(root, ctx) {
  const body = h("div", { id: "usage-body" }, loading());
  const since = h("select", { "aria-label": "Window", id: "usage-window" },
    Object.keys(WINDOWS).map((w) => h("option", { value: w, selected: w === prefs.since }, `last ${w}`)));
  const by = h("select", { "aria-label": "Group by", id: "usage-by" },
    GROUPS.map((g) => h("option", { value: g, selected: g === prefs.by }, `by ${g}`)));
  const updated = h("span", { class: "muted small" });
  const refresh = h("button", { class: "btn small", type: "button" }, "Refresh");
  replace(root,
    pageHead("Usage", "Cost, latency, cache and fallbacks from the calls this gateway recorded.", since, by, refresh, updated),
    body);

  if (ctx.session && ctx.session.usage_enabled === false) {
    replace(body, disabledNotice());
    return undefined;
  }

  let timer = null;
  let stopped = false;

  async function load() {
    clearTimeout(timer);
    prefs.since = since.value;
    prefs.by = by.value;
    const w = prefs.since;
    const g = prefs.by;
    let totals;
    let series;
    let alerts;
    let calls;
    try {
      [totals, series, alerts, calls] = await Promise.all([
        api(`/api/v1/usage?since=${w}&by=${g}`, { signal: ctx.signal }),
        api(`/api/v1/usage/series?since=${w}&buckets=${WINDOWS[w]}&by=${g}`, { signal: ctx.signal }),
        api(`/api/v1/alerts?since=${w}`, { signal: ctx.signal }),
        api("/api/v1/calls?limit=50", { signal: ctx.signal }),
      ]);
    } catch (err) {
      if (err && err.name === "AbortError") return;
      if (stopped) return;
      if (isDisabled(err)) { replace(body, disabledNotice()); return; }
      replace(body, banner("err", h("p", null, describeError(err))));
      timer = setTimeout(load, REFRESH_MS);
      return;
    }
    if (stopped) return;
    const t = totals.totals;
    const xs = series.buckets.map((b) => b.t);
    const pick = (key) => series.buckets.map((b) => (b.totals.count ? b.totals[key] : null));
    replace(body,
      h("div", { class: "stats", id: "usage-stats" },
        stat("Requests", fmtInt(t.count)),
        stat("Cost", fmtCost(t.cost)),
        stat("Tokens in → out", `${fmtInt(t.tokens_in)} → ${fmtInt(t.tokens_out)}`),
        stat("Error rate", fmtPct(t.error_rate)),
        stat("Latency p50", fmtSeconds(t.latency_p50)),
        stat("Latency p95", fmtSeconds(t.latency_p95)),
        stat("Cache hit rate", fmtPct(t.cache_hit_rate)),
        stat("Fallback rate", fmtPct(t.fallback_rate))),
      section("Alerts", alertsPanel(alerts)),
      section("Over time", h("div", { class: "charts", id: "usage-charts" },
        chartPanel(`Cost by ${g}`, stackedBars({ xs, series: costSeries(series), yFormat: fmtCost, label: `cost over time by ${g}` })),
        chartPanel("Latency percentiles", lineChart({
          xs, yFormat: fmtSeconds, label: "latency p50, p95, p99 over time",
          series: [{ name: "p50", values: pick("latency_p50") }, { name: "p95", values: pick("latency_p95") }, { name: "p99", values: pick("latency_p99") }],
        })),
        chartPanel("Cache hit and fallback rates", lineChart({
          xs, yMax: 1, yFormat: fmtPct, label: "cache hit rate and fallback rate over time",
          series: [{ name: "cache hit rate", values: pick("cache_hit_rate") }, { name: "fallback rate", values: pick("fallback_rate") }],
        })),
        chartPanel("Requests", stackedBars({
          xs, yFormat: (v) => fmtInt(Math.round(v)), label: "requests over time",
          series: [
            { name: "ok", values: series.buckets.map((b) => (b.totals.count || 0) - (b.totals.errors || 0)), color: "#2fa56a" },
            { name: "errors", values: series.buckets.map((b) => b.totals.errors || 0), color: "#d92d20" },
          ],
        })))),
      section(`By ${g}`, h("div", { class: "panel", id: "usage-groups" }, groupTable(g, totals.rows))),
      section("Recent calls", h("div", { class: "panel", id: "usage-calls" }, callsTable(calls.calls))));
    updated.textContent = `updated ${new Date().toLocaleTimeString("en-GB")}`;
    timer = setTimeout(load, REFRESH_MS);
  }

  since.addEventListener("change", load);
  by.addEventListener("change", load);
  refresh.addEventListener("click", load);
  await load();
  return () => { stopped = true; clearTimeout(timer); };
}
