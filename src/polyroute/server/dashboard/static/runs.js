// Runs: recorded pipeline runs (GET /api/v1/runs) and one run's steps
// (GET /api/v1/runs/{id}) with per-step model, tokens, cost and latency.

import { api } from "./api.js";
import {
  attemptsTable, badge, banner, empty, fmtAgo, fmtCost, fmtInt, fmtSeconds, fmtTime, h, pageHead,
  replace, section, stat, table,
} from "./ui.js";

function statusBadge(status) {
  return badge(status, status === "ok" ? "ok" : "err");
}

async function renderList(root, ctx) {
  const data = await api("/api/v1/runs?limit=200", { signal: ctx.signal });
  if (!ctx.isCurrent()) return;
  const refresh = h("button", { class: "btn small", type: "button", onclick: () => renderList(root, ctx) }, "Refresh");
  const head = pageHead("Runs", "Pipeline runs recorded by this gateway, newest first.", refresh);
  if (!data.runs.length) {
    replace(root, head, h("div", { class: "panel" }, empty("No runs yet",
      "Run a pipeline from the Pipelines page (Run whole pipeline), with polyroute run, or POST /api/v1/pipeline.")));
    return;
  }
  const rows = data.runs.map((r) => {
    const href = `#/runs/${encodeURIComponent(r.run_id)}`;
    const tr = h("tr", { class: "clickable", "data-run-id": r.run_id, onclick: () => { location.hash = href; } },
      h("td", null, h("a", { href, class: "mono" }, r.run_id.slice(0, 12))),
      h("td", null, h("span", { title: fmtTime(r.started_at) }, fmtAgo(r.started_at))),
      h("td", null, r.pipeline),
      h("td", null, statusBadge(r.status), r.error ? h("div", { class: "cell-error small" }, r.error) : null),
      h("td", { class: "num" }, String(r.steps)),
      h("td", { class: "num" }, fmtInt(r.total_tokens)),
      h("td", { class: "num" }, fmtCost(r.total_cost)),
      h("td", { class: "num" }, fmtSeconds(r.total_latency)));
    return tr;
  });
  replace(root, head, h("div", { class: "panel", id: "runs-table" }, table(
    [{ label: "run" }, { label: "started" }, { label: "pipeline" }, { label: "status" }, { label: "steps", num: true },
      { label: "tokens", num: true }, { label: "cost", num: true }, { label: "latency", num: true }],
    rows)));
}

async function renderRun(root, ctx, id) {
  const run = await api(`/api/v1/runs/${encodeURIComponent(id)}`, { signal: ctx.signal });
  if (!ctx.isCurrent()) return;
  const longest = Math.max(0.000001, ...run.steps.map((s) => s.latency || 0));
  const rows = [];
  for (const s of run.steps) {
    const bar = h("div", { class: "bar-fill" });
    bar.style.width = `${Math.max(2, (100 * (s.latency || 0)) / longest)}%`;
    const detail = h("tr", { class: "detail-row", hidden: true },
      h("td", { colspan: 9 }, h("div", { class: "stack" },
        s.status === "ok"
          ? h("pre", { class: "output" }, typeof s.output === "string" ? s.output : JSON.stringify(s.output, null, 2))
          : h("p", { class: "error-text" }, s.error),
        attemptsTable(s.attempts))));
    const toggle = h("button", { class: "btn small ghost", type: "button", "aria-expanded": "false" }, "Show");
    toggle.addEventListener("click", () => {
      detail.hidden = !detail.hidden;
      toggle.textContent = detail.hidden ? "Show" : "Hide";
      toggle.setAttribute("aria-expanded", String(!detail.hidden));
    });
    const usage = s.usage || {};
    rows.push(h("tr", { "data-step": s.step_name },
      h("td", null, h("strong", null, s.step_name)),
      h("td", null, h("span", { class: "mono small" }, s.model || "—"), s.config && s.config.routing && s.config.routing !== "single" ? h("div", { class: "faint small" }, s.config.routing) : null),
      h("td", { class: "hide-narrow" }, s.provider || "—"),
      h("td", { class: "num" }, `${fmtInt(usage.prompt_tokens)} → ${fmtInt(usage.completion_tokens)}`),
      h("td", { class: "num" }, fmtCost(s.cost)),
      h("td", { class: "num" }, fmtSeconds(s.latency), h("div", { class: "bar-track" }, bar)),
      h("td", { class: "num hide-narrow" }, String(s.retries ?? 0)),
      h("td", null, statusBadge(s.status)),
      h("td", null, toggle)));
    rows.push(detail);
  }
  const providers = Object.entries(run.usage_by_provider || {});
  replace(root,
    h("p", null, h("a", { href: "#/runs" }, "← All runs")),
    pageHead(`Run ${run.run_id.slice(0, 12)}`, `${run.pipeline} · started ${fmtTime(run.started_at)}`, statusBadge(run.status)),
    run.error ? banner("err", h("p", null, run.error)) : null,
    h("div", { class: "stats" },
      stat("Steps", String(run.steps.length)),
      stat("Tokens", fmtInt(run.total_tokens)),
      stat("Cost", fmtCost(run.total_cost)),
      stat("Latency", fmtSeconds(run.total_latency))),
    section("Steps", h("div", { class: "panel", id: "run-steps" }, table(
      [{ label: "step" }, { label: "model" }, { label: "provider", class: "hide-narrow" }, { label: "tokens", num: true },
        { label: "cost", num: true }, { label: "latency", num: true }, { label: "retries", num: true, class: "hide-narrow" },
        { label: "status" }, { label: "output" }],
      rows))),
    providers.length ? section("Tokens by provider", h("div", { class: "panel" }, table(
      [{ label: "provider" }, { label: "prompt", num: true }, { label: "completion", num: true }, { label: "total", num: true }],
      providers.map(([p, u]) => [p, fmtInt(u.prompt_tokens), fmtInt(u.completion_tokens), fmtInt(u.total_tokens)]),
      { compact: true }))) : null);
}

export async function render(root, ctx) {
  if (ctx.args[0]) await renderRun(root, ctx, ctx.args[0]);
  else await renderList(root, ctx);
  return undefined;
}
