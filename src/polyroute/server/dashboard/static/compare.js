// Compare: one prompt to several models or routes at once. One request per
// model (POST /api/v1/compare with a single model), so each card appears the
// moment its model answers. Cards show output, tokens, latency, cost,
// retries, warnings or the error with its attempts; any two outputs can be
// diffed word by word; "Copy as config" writes a polyroute.yaml snippet.

import { api, describeError } from "./api.js";
import { diffWords, similarity } from "./diff.js";
import {
  attemptsList, badge, banner, copyText, figure, fmtCost, fmtInt, fmtSeconds, h, pageHead,
  replace, spinner, toYaml, toast,
} from "./ui.js";

// Kept while the tab lives, so leaving and coming back keeps the form.
const memory = {
  prompt: "Write a one-sentence tagline for a drum school for adult beginners.",
  system: "",
  params: { temperature: "", max_tokens: "", top_p: "" },
  selected: null,
  search: "",
};

function priceText(m) {
  const p = m.price || {};
  if (!p.input && !p.output) return p.per_image ? `$${p.per_image}/image` : "no price";
  return `$${p.input} / $${p.output} per 1M`;
}

function pickerEntries(catalog) {
  // Groups in the order a person looks for things; an id may appear in
  // "Suggested" and again in its own group (one checkbox state for both).
  const groups = [];
  const byId = new Map(catalog.models.map((m) => [m.id, m]));
  const modelMeta = (m) => [m.provider, priceText(m), m.tier, !m.usable && m.key_variable ? `needs ${m.key_variable}` : null]
    .filter(Boolean).join(" · ");
  groups.push({
    name: "Suggested",
    items: catalog.suggested.map((id) => ({ id, meta: byId.has(id) ? modelMeta(byId.get(id)) : "route" })),
  });
  groups.push({
    name: "Routes",
    items: catalog.routes.map((r) => ({
      id: r.name, meta: r.error ? r.error : `${r.strategy} · ${r.models.length} model(s): ${r.models.slice(0, 2).join(", ")}${r.models.length > 2 ? " …" : ""}`,
    })),
  });
  const ready = catalog.models.filter((m) => m.usable && m.kind !== "simulated");
  const simulated = catalog.models.filter((m) => m.kind === "simulated");
  const needKey = catalog.models.filter((m) => !m.usable);
  groups.push({ name: "Ready models", items: ready.map((m) => ({ id: m.id, meta: modelMeta(m) })) });
  groups.push({ name: "Simulated stand-ins (no key needed)", items: simulated.map((m) => ({ id: m.id, meta: modelMeta(m) })) });
  groups.push({ name: "Need a key", items: needKey.map((m) => ({ id: m.id, meta: modelMeta(m), warn: true })) });
  return groups.filter((g) => g.items.length);
}

function configSnippet(model, params) {
  const pool = { models: [model] };
  for (const [k, v] of Object.entries(params)) pool[k] = v;
  return `# polyroute.yaml: serve text tasks with ${model}\n${toYaml({ tasks: { text: pool } })}`;
}

function readParams(form) {
  const out = {};
  for (const name of ["temperature", "max_tokens", "top_p"]) {
    const raw = form.elements[name].value.trim();
    if (raw === "") continue;
    const v = Number(raw);
    if (!Number.isNaN(v)) out[name] = name === "max_tokens" ? Math.round(v) : v;
  }
  return out;
}

/** "simulator/gpt-4o" → {provider, model}; a catalog id → {model}. */
function taskBody(model, providers) {
  const [prefix, ...rest] = model.split("/");
  if (rest.length && providers.includes(prefix)) return { provider: prefix, model: rest.join("/") };
  return { model };
}

export async function render(root, ctx) {
  const catalog = await ctx.catalog();
  if (!ctx.isCurrent()) return undefined;
  const routeNames = new Set(catalog.routes.map((r) => r.name));
  const providerNames = catalog.providers.map((p) => p.provider);
  const known = new Set([...catalog.models.map((m) => m.id), ...routeNames]);
  if (!memory.selected) memory.selected = [...catalog.suggested];
  const selected = new Set(memory.selected.filter((id) => known.has(id) || id.includes("/")));
  const results = new Map(); // model → card data, in selection order
  let order = [];
  let controller = null;

  // -- form --------------------------------------------------------------------
  const prompt = h("textarea", { name: "prompt", id: "compare-prompt", rows: 4, required: true }, memory.prompt);
  const system = h("textarea", { name: "system", rows: 3, placeholder: "optional" }, memory.system);
  const num = (name, attrs) => h("label", { class: "field" }, h("span", null, name),
    h("input", { type: "number", name, value: memory.params[name], placeholder: "default", ...attrs }));
  const chips = h("div", { class: "chips", id: "selected-models", "aria-live": "polite" });
  const search = h("input", { type: "search", placeholder: "Filter models and routes…", value: memory.search, "aria-label": "Filter models and routes" });
  const list = h("div", { class: "picker", id: "model-picker", role: "group", "aria-label": "Models and routes" });
  const custom = h("input", { type: "text", list: "compare-known", placeholder: "provider/model or route", "aria-label": "Add a model or route by name" });
  const datalist = h("datalist", { id: "compare-known" }, [...known].map((id) => h("option", { value: id })));
  const runBtn = h("button", { class: "btn primary", type: "submit", id: "compare-run" }, "Compare");
  const formError = h("p", { class: "form-error", role: "alert", hidden: true });
  const form = h("form", { class: "panel stack", id: "compare-form", novalidate: true },
    h("label", { class: "field" }, h("span", null, "Prompt"), prompt),
    h("details", { open: memory.system || Object.values(memory.params).some(Boolean) },
      h("summary", null, "System prompt and parameters"),
      h("div", { class: "stack" },
        h("label", { class: "field" }, h("span", null, "System prompt"), system),
        h("div", { class: "params" },
          num("temperature", { min: 0, max: 2, step: 0.1 }),
          num("max_tokens", { min: 1, step: 1 }),
          num("top_p", { min: 0, max: 1, step: 0.05 })))),
    h("div", { class: "field" },
      h("span", null, "Models and routes ", h("span", { class: "hint" }, "— each runs in parallel")),
      chips, search, list,
      h("div", { class: "row" }, custom, datalist,
        h("button", { class: "btn small", type: "button", onclick: addCustom }, "Add"))),
    formError,
    h("div", { class: "row spread" }, h("span", { class: "muted small", id: "compare-count" }), runBtn));

  const summary = h("div", { class: "row muted", id: "compare-summary" });
  const grid = h("div", { class: "cards", id: "compare-results" });
  const diffBox = h("div", { id: "compare-diff" });
  const resultsCol = h("div", { class: "stack" },
    summary,
    grid,
    diffBox);

  replace(root,
    pageHead("Compare", "Send one prompt to several models side by side: output, tokens, latency, cost."),
    h("div", { class: "two-col" }, form, resultsCol));

  // -- model picker ------------------------------------------------------------
  const groups = pickerEntries(catalog);

  function remember() {
    memory.selected = [...selected];
    memory.prompt = prompt.value;
    memory.system = system.value;
    memory.search = search.value;
    for (const k of Object.keys(memory.params)) memory.params[k] = form.elements[k].value;
  }

  function drawChips() {
    replace(chips, selected.size
      ? [...selected].map((id) => h("span", { class: "chip", "data-model": id },
        h("span", { title: id }, id),
        h("button", { type: "button", "aria-label": `Remove ${id}`, onclick: () => toggle(id, false) }, "×")))
      : h("span", { class: "muted small" }, "Pick at least one model or route below."));
    const n = selected.size;
    document.getElementById("compare-count").textContent = `${n} selected`;
    runBtn.textContent = n > 1 ? `Compare ${n} models` : "Run";
  }

  function drawList() {
    const q = search.value.trim().toLowerCase();
    const parts = [];
    for (const g of groups) {
      const items = g.items.filter((it) => !q || it.id.toLowerCase().includes(q) || (it.meta || "").toLowerCase().includes(q));
      if (!items.length) continue;
      parts.push(h("div", { class: "group" }, g.name));
      for (const it of items) {
        parts.push(h("label", null,
          h("input", { type: "checkbox", value: it.id, checked: selected.has(it.id), onchange: (ev) => toggle(it.id, ev.target.checked) }),
          h("span", null, h("span", { class: "name" }, it.id), h("br"), h("span", { class: ["meta", it.warn && "warn"] }, it.meta))));
      }
    }
    replace(list, parts.length ? parts : h("p", { class: "muted small empty" }, "Nothing matches; add it by name below."));
  }

  function toggle(id, on) {
    if (on) selected.add(id); else selected.delete(id);
    remember();
    drawChips();
    // Keep the scroll position: redraw only the checkboxes' states.
    for (const box of list.querySelectorAll("input[type=checkbox]")) box.checked = selected.has(box.value);
  }

  function addCustom() {
    const id = custom.value.trim();
    if (!id) return;
    toggle(id, true);
    custom.value = "";
  }
  custom.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); addCustom(); } });
  search.addEventListener("input", () => { remember(); drawList(); });
  prompt.addEventListener("input", remember);
  system.addEventListener("input", remember);
  drawChips();
  drawList();

  // -- cards -------------------------------------------------------------------
  function pendingCard(model) {
    return h("article", { class: "card pending result-card", "data-model": model, "data-status": "pending" },
      h("header", null, h("span", { class: "title" }, model), badge("running", "info")),
      h("div", { class: "body" }, h("div", { class: "row muted" }, spinner(`waiting for ${model}`), "Waiting for the answer…")));
  }

  function okCard(model, r) {
    const tokens = r.tokens || {};
    const params = readParams(form);
    const snippetBox = h("div", { class: "snippet", hidden: true });
    const applyMsg = h("div");
    const canApply = !routeNames.has(model) && !model.includes(":") && catalog.tasks.length;
    const taskSelect = canApply
      ? h("select", { "aria-label": "Task to serve with this model" }, catalog.tasks.map((t) => h("option", { value: t }, `task:${t}`)))
      : null;
    const copyBtn = h("button", {
      class: "btn small", type: "button", "data-action": "copy-config",
      onclick: async () => {
        const text = configSnippet(model, params);
        replace(snippetBox, h("pre", { class: "output config-snippet" }, text));
        snippetBox.hidden = false;
        toast((await copyText(text)) ? `Copied config for ${model}` : "Copy failed: select the text in the card");
      },
    }, "Copy as config");
    const applyBtn = canApply ? h("button", {
      class: "btn small ghost", type: "button", title: "PUT /api/v1/tasks/{task}: needs an admin key when keys are set",
      onclick: async () => {
        const task = taskSelect.value;
        replace(applyMsg);
        try {
          const out = await api(`/api/v1/tasks/${encodeURIComponent(task)}`, { method: "PUT", body: taskBody(model, providerNames) });
          replace(applyMsg, banner("ok", h("p", null, `task:${task} now runs on ${out.models.join(" → ")}.`)));
        } catch (err) {
          replace(applyMsg, banner("err", h("p", null, describeError(err))));
        }
      },
    }, "Apply to") : null;
    const warnings = (r.warnings || []).length ? h("ul", { class: "warnings" }, r.warnings.map((w) => h("li", null, w))) : null;
    const multi = (r.attempts || []).length > 1 || r.retries;
    return h("article", { class: "card result-card", "data-model": model, "data-status": "ok" },
      h("header", null,
        h("span", { class: "title" }, model),
        h("span", { class: "row" },
          r.answered_by && r.answered_by !== model ? badge(`answered by ${r.answered_by}`, "accent") : null,
          badge(r.provider || "?", ""),
          r.simulated ? badge("simulated", "info") : null)),
      h("div", { class: "body" },
        h("div", { class: "figures" },
          figure("tokens", "Tokens", `${fmtInt(tokens.prompt_tokens)} → ${fmtInt(tokens.completion_tokens)}`, "prompt → completion"),
          figure("latency", "Latency", fmtSeconds(r.latency)),
          figure("cost", "Cost", fmtCost(r.cost)),
          figure("retries", "Retries", String(r.retries ?? 0))),
        h("pre", { class: "output", "data-output": "" }, r.content ?? ""),
        warnings,
        multi ? h("details", null, h("summary", null, `Attempts (${r.attempts.length})`), attemptsList(r.attempts)) : null,
        snippetBox,
        applyMsg),
      h("footer", null, copyBtn, applyBtn ? h("span", { class: "row apply" }, applyBtn, taskSelect) : null));
  }

  function errorCard(model, r) {
    return h("article", { class: "card error result-card", "data-model": model, "data-status": "error" },
      h("header", null, h("span", { class: "title" }, model), badge(r.error_type || "error", "err")),
      h("div", { class: "body" },
        h("p", { class: "error-text" }, r.error || "failed"),
        h("div", null, h("h4", { class: "small muted" }, "Attempts"), attemptsList(r.attempts))));
  }

  function drawCard(model) {
    const r = results.get(model);
    const el = grid.querySelector(`[data-model="${CSS.escape(model)}"]`);
    const card = !r ? pendingCard(model) : r.ok ? okCard(model, r) : errorCard(model, r);
    if (el) el.replaceWith(card); else grid.appendChild(card);
  }

  function drawSummary() {
    const done = [...results.values()];
    const ok = done.filter((r) => r.ok);
    const cost = ok.reduce((a, r) => a + (r.cost || 0), 0);
    const fastest = ok.slice().sort((a, b) => a.latency - b.latency)[0];
    const cheapest = ok.slice().sort((a, b) => a.cost - b.cost)[0];
    const parts = [`${done.length} of ${order.length} answered`];
    if (done.length - ok.length) parts.push(`${done.length - ok.length} failed`);
    if (ok.length) parts.push(`total ${fmtCost(cost)}`);
    if (ok.length > 1) parts.push(`fastest ${fastest.model} (${fmtSeconds(fastest.latency)})`, `cheapest ${cheapest.model}`);
    replace(summary, done.length < order.length ? spinner("running") : null, parts.join(" · "));
  }

  // -- diff --------------------------------------------------------------------
  const diffState = { a: null, b: null };
  function drawDiff() {
    const ok = order.filter((m) => results.get(m) && results.get(m).ok);
    if (ok.length < 2) { replace(diffBox); return; }
    if (!ok.includes(diffState.a)) diffState.a = ok[0];
    if (!ok.includes(diffState.b) || diffState.b === diffState.a) diffState.b = ok.find((m) => m !== diffState.a);
    const pick = (key, label) => h("label", { class: "field" }, h("span", null, label),
      h("select", { "data-diff": key, onchange: (ev) => { diffState[key] = ev.target.value; drawDiff(); } },
        ok.map((m) => h("option", { value: m, selected: m === diffState[key] }, m))));
    const ops = diffWords(results.get(diffState.a).content, results.get(diffState.b).content);
    const left = ops.filter((o) => o.op !== "ins").map((o) => (o.op === "del" ? h("del", null, o.text) : o.text));
    const right = ops.filter((o) => o.op !== "del").map((o) => (o.op === "ins" ? h("ins", null, o.text) : o.text));
    replace(diffBox, h("section", { class: "panel stack", "aria-label": "Difference between two outputs" },
      h("div", { class: "row spread" }, h("h2", null, "Side-by-side diff"),
        h("span", { class: "muted small" }, `${Math.round(similarity(ops) * 100)}% of words in common`)),
      h("div", { class: "pair" }, pick("a", "Left"), pick("b", "Right")),
      h("div", { class: "diff" },
        h("div", null, h("h4", null, diffState.a), h("pre", { "data-diff-side": "left" }, left)),
        h("div", null, h("h4", null, diffState.b), h("pre", { "data-diff-side": "right" }, right)))));
  }

  // -- running -----------------------------------------------------------------
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    remember();
    formError.hidden = true;
    if (!prompt.value.trim()) { formError.textContent = "Write a prompt first."; formError.hidden = false; prompt.focus(); return; }
    if (!selected.size) { formError.textContent = "Pick at least one model or route."; formError.hidden = false; return; }
    if (controller) controller.abort();
    controller = new AbortController();
    const signal = controller.signal;
    order = [...selected];
    results.clear();
    replace(grid);
    order.forEach(drawCard);
    drawSummary();
    drawDiff();
    const body = { prompt: prompt.value };
    if (system.value.trim()) body.system = system.value;
    const params = readParams(form);
    if (Object.keys(params).length) body.parameters = params;
    runBtn.disabled = true;
    await Promise.allSettled(order.map(async (model) => {
      let card;
      try {
        const data = await api("/api/v1/compare", { method: "POST", body: { ...body, models: [model] }, signal });
        card = data.results[0];
      } catch (err) {
        if (err && err.name === "AbortError") return;
        card = { model, ok: false, error: describeError(err), error_type: err.code || `HTTP ${err.status || "?"}`, attempts: [] };
      }
      if (signal.aborted) return;
      results.set(model, card);
      drawCard(model);
      drawSummary();
      drawDiff();
    }));
    runBtn.disabled = false;
  });

  return () => { if (controller) controller.abort(); };
}
