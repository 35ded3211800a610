// Pipelines (seed 002's workflow builder): the configured pipelines and their
// steps; edit a step's model list (provider, model, parameters, routing
// parallel/fallback) with live validation (duplicates, unknown models, missing
// credentials); preview-run one step or the whole pipeline on sample input;
// save the edited definition as YAML.
//
// The edited definition is seed 000's pipeline_config ({default_model,
// step_configs}); it is laid over the file's pipeline by the gateway, so the
// file's prompts still apply.

import { api, describeError } from "./api.js";
import {
  attemptsList, badge, banner, copyText, debounce, download, empty, figure, fmtCost, fmtInt,
  fmtSeconds, h, keyLink, pageHead, replace, spinner, toYaml, toast, withoutUrl,
} from "./ui.js";

// Drafts survive leaving the page (per pipeline name) for this tab's life.
const drafts = new Map();
const samples = new Map();
let rowSeq = 0;

const clone = (v) => JSON.parse(JSON.stringify(v));

/** Editor rows from a step's config (a single model becomes a one-row list). */
function rowsOf(stepConfig, fallbackModel) {
  const specs = stepConfig.models
    || [{ model: stepConfig.model || fallbackModel || "" }];
  return specs.map((spec) => {
    const p = spec.parameters || {};
    return {
      id: ++rowSeq,
      provider: spec.provider || "",
      model: spec.model || "",
      temperature: p.temperature ?? "",
      max_tokens: p.max_tokens ?? p.max_output_tokens ?? "",
      top_p: p.top_p ?? "",
    };
  });
}

/** Rows back into ModelSpec dicts. */
function specsOf(rows) {
  return rows.map((r) => {
    const spec = {};
    if (r.provider) spec.provider = r.provider;
    spec.model = r.model.trim();
    const params = {};
    if (r.temperature !== "" && !Number.isNaN(Number(r.temperature))) params.temperature = Number(r.temperature);
    if (r.max_tokens !== "" && !Number.isNaN(Number(r.max_tokens))) params.max_tokens = Math.round(Number(r.max_tokens));
    if (r.top_p !== "" && !Number.isNaN(Number(r.top_p))) params.top_p = Number(r.top_p);
    if (Object.keys(params).length) spec.parameters = params;
    return spec;
  });
}

/** Where a problem belongs: {step, row} (row may be null) or null for the pipeline. */
function placeOf(problem) {
  const m = /^step_configs\.([^.[\]]+)(?:\.models\[(\d+)\])?/.exec(problem.path || "");
  if (!m) return null;
  let row = m[2] === undefined ? null : Number(m[2]);
  if (row === null) {
    const dup = /models\[(\d+)\] duplicates/.exec(problem.message || "");
    if (dup) row = Number(dup[1]);
  }
  return { step: m[1], row };
}

function problemLine(p) {
  return h("p", { class: ["problem", p.level], "data-level": p.level },
    p.level === "error" ? "✕ " : "! ", withoutUrl(p.message, p.key_page),
    p.key_page ? [" ", keyLink(p.key_page)] : null);
}

/** A step's result (StepResult.to_dict) as a card. */
export function stepResultCard(r) {
  const ok = r.status === "ok";
  const usage = r.usage || {};
  const outputs = Object.entries(r.model_outputs || {}).flatMap(([provider, models]) =>
    Object.entries(models).map(([model, o]) => ({ provider, model, ...o })));
  return h("article", { class: ["card", "step-result", !ok && "error"], "data-step": r.step_name, "data-status": r.status },
    h("header", null,
      h("span", { class: "title" }, r.step_name),
      h("span", { class: "row" }, r.config && r.config.routing ? badge(r.config.routing, "accent") : null,
        badge(ok ? "ok" : "error", ok ? "ok" : "err"))),
    h("div", { class: "body" },
      h("div", { class: "figures" },
        figure("model", "Model", h("span", { class: "mono small" }, r.model || "—")),
        figure("tokens", "Tokens", `${fmtInt(usage.prompt_tokens)} → ${fmtInt(usage.completion_tokens)}`, "prompt → completion"),
        figure("cost", "Cost", fmtCost(r.cost)),
        figure("latency", "Latency", fmtSeconds(r.latency))),
      ok ? h("pre", { class: "output" }, typeof r.output === "string" ? r.output : JSON.stringify(r.output, null, 2))
        : h("p", { class: "error-text" }, r.error || "failed"),
      outputs.length ? h("details", { open: !ok },
        h("summary", null, `Every model's answer (${outputs.length})`),
        h("div", { class: "stack" }, outputs.map((o) => h("div", { class: "panel" },
          h("div", { class: "row spread" }, h("span", { class: "mono" }, `${o.provider}/${o.model}`),
            h("span", { class: "muted small" }, `${fmtInt((o.usage || {}).total_tokens)} tokens · ${fmtCost(o.cost)} · ${fmtSeconds(o.latency)}`)),
          o.error ? h("p", { class: "error-text" }, o.error) : h("pre", { class: "output" }, o.content || "")))))
        : null,
      (r.warnings || []).length ? h("ul", { class: "warnings" }, r.warnings.map((w) => h("li", null, w))) : null,
      !ok || (r.attempts || []).length > 1
        ? h("details", { open: !ok }, h("summary", null, `Attempts (${(r.attempts || []).length})`), attemptsList(r.attempts)) : null));
}

export async function render(root, ctx) {
  const [data, catalog] = await Promise.all([api("/api/v1/pipelines", { signal: ctx.signal }), ctx.catalog()]);
  if (!ctx.isCurrent()) return undefined;
  const head = pageHead("Pipelines", "Edit which models serve each step, preview it on sample input, save the result as YAML.");
  if (!data.pipelines.length) {
    const example = toYaml({
      pipelines: {
        article: {
          default_model: "simulator/gpt-4o-mini",
          steps: {
            outline: { prompt: "Outline an article about {content}" },
            draft: { models: ["simulator/gpt-4o", "simulator/claude-sonnet-4-20250514"], routing: "parallel", prompt: "Write it from:\n{outputs[outline]}" },
          },
        },
      },
    });
    replace(root, head, h("div", { class: "panel" },
      empty("No pipelines configured", "Add a pipelines: section to polyroute.yaml (then POST /api/v1/config/reload):"),
      h("pre", { class: "output" }, example)));
    return undefined;
  }
  const names = data.pipelines.map((p) => p.name);
  const name = names.includes(ctx.args[0]) ? ctx.args[0] : names[0];
  const pipe = data.pipelines.find((p) => p.name === name);
  const original = pipe.pipeline_config || { step_configs: {} };
  if (!drafts.has(name)) drafts.set(name, clone(original));
  const draft = drafts.get(name);
  const lastOutputs = {};
  const editors = new Map(); // step → {rows, routing, open}
  let problems = [];
  let validating = null;

  // -- layout --------------------------------------------------------------------
  const list = h("nav", { class: "pipe-list", "aria-label": "Pipelines" }, data.pipelines.map((p) =>
    h("a", { href: `#/pipelines/${encodeURIComponent(p.name)}`, class: p.name === name ? "active" : null, "aria-current": p.name === name ? "page" : null },
      h("strong", null, p.name), h("br"),
      h("span", { class: "muted" }, `${p.steps.length} step${p.steps.length === 1 ? "" : "s"}${p.default_model ? ` · default ${p.default_model}` : ""}`))));
  const sample = h("textarea", { id: "pipeline-input", rows: 3, "aria-label": "Sample input" }, samples.get(name) || "drum lessons for adult beginners");
  sample.addEventListener("input", () => samples.set(name, sample.value));
  const runAllBtn = h("button", { class: "btn primary", type: "button", id: "run-pipeline" }, "Run whole pipeline");
  const resetBtn = h("button", { class: "btn ghost", type: "button" }, "Reset edits");
  const pipelineProblems = h("div", { id: "pipeline-problems" });
  const stepsBox = h("div", { class: "stack", id: "pipeline-steps" });
  const runBox = h("div", { id: "pipeline-run" });
  const format = h("select", { id: "yaml-format", "aria-label": "YAML format" },
    h("option", { value: "pipeline_config" }, "pipeline_config (API, seed 000)"),
    h("option", { value: "config" }, "polyroute.yaml pipelines: section"));
  const saveBtn = h("button", { class: "btn primary", type: "button", id: "save-yaml" }, "Save as YAML");
  const validity = h("span", { class: "muted small", id: "validation-state" });
  const yamlBox = h("div", { id: "yaml-box" });

  const main = h("div", { class: "stack" },
    h("div", { class: "panel stack" },
      h("div", { class: "row spread" },
        h("div", null, h("h2", null, name),
          h("p", { class: "muted small" }, `default model: ${pipe.default_model || `${data.default_model} (router default)`}`)),
        h("div", { class: "row" }, resetBtn, runAllBtn)),
      !pipe.runnable ? banner("warn", h("p", null, "Some steps have no prompt in the config: they cannot run from the dashboard.")) : null,
      pipe.problem ? banner("err", h("p", null, pipe.problem)) : null,
      h("label", { class: "field" }, h("span", null, "Sample input ", h("span", { class: "hint" }, "— fills {content} in the prompts")), sample)),
    pipelineProblems,
    stepsBox,
    runBox,
    h("section", { class: "panel stack", "aria-label": "Save as YAML" },
      h("div", { class: "row spread" }, h("h2", null, "Save"), validity),
      h("div", { class: "row" }, format, saveBtn),
      yamlBox));

  replace(root, head, h("div", { class: "side-col" }, list, main));

  // -- validation ------------------------------------------------------------------
  async function validate() {
    const mine = Symbol("validation");
    validating = mine;
    replace(validity, spinner("validating"), " checking…");
    try {
      const res = await api("/api/v1/pipelines/validate", { method: "POST", body: { pipeline: name, pipeline_config: draft }, signal: ctx.signal });
      if (validating !== mine) return;
      problems = res.problems;
    } catch (err) {
      if (err && err.name === "AbortError") return;
      problems = [{ level: "error", path: "", message: describeError(err) }];
    }
    drawProblems();
  }
  const validateSoon = debounce(validate, 250);

  function drawProblems() {
    const errors = problems.filter((p) => p.level === "error").length;
    const warnings = problems.length - errors;
    replace(validity, errors ? badge(`${errors} error${errors > 1 ? "s" : ""}`, "err") : badge("valid", "ok"),
      warnings ? [" ", badge(`${warnings} warning${warnings > 1 ? "s" : ""}`, "warn")] : null);
    saveBtn.disabled = errors > 0;
    const general = problems.filter((p) => !placeOf(p) || !pipe.steps.some((s) => s.name === placeOf(p).step));
    replace(pipelineProblems, general.length ? h("div", { class: "panel" }, general.map(problemLine)) : null);
    for (const step of pipe.steps) {
      const ed = editors.get(step.name);
      const mine = problems.filter((p) => placeOf(p) && placeOf(p).step === step.name);
      const box = stepsBox.querySelector(`[data-step-problems="${CSS.escape(step.name)}"]`);
      if (box) replace(box, mine.filter((p) => !ed || !ed.open || placeOf(p).row === null).map(problemLine));
      if (!ed || !ed.open) continue;
      for (const row of stepsBox.querySelectorAll(`[data-step-editor="${CSS.escape(step.name)}"] .model-row`)) {
        const i = Number(row.dataset.index);
        const here = mine.filter((p) => placeOf(p).row === i);
        row.classList.toggle("has-error", here.some((p) => p.level === "error"));
        replace(row.querySelector(".problems"), here.map(problemLine));
      }
    }
  }

  // -- editing ---------------------------------------------------------------------
  function commit(stepName) {
    const ed = editors.get(stepName);
    const base = { ...(draft.step_configs[stepName] || {}) };
    delete base.model;
    base.models = specsOf(ed.rows);
    base.routing = ed.routing;
    draft.step_configs[stepName] = base;
    const summary = stepsBox.querySelector(`[data-step-models="${CSS.escape(stepName)}"]`);
    if (summary) replace(summary, modelsSummary(pipe.steps.find((st) => st.name === stepName)));
    validateSoon();
  }

  const providerOptions = ["", ...catalog.providers.map((p) => p.provider)];
  function modelChoices(provider) {
    if (!provider) return [...catalog.models.map((m) => m.id), ...catalog.routes.map((r) => r.name)];
    return [...new Set(catalog.models.filter((m) => m.provider === provider).map((m) => m.model))];
  }

  function editorFor(step) {
    const ed = editors.get(step.name);
    const rowEls = ed.rows.map((r, i) => {
      const listId = `models-${step.name}-${r.id}`;
      const set = (key) => (ev) => { r[key] = ev.target.value; commit(step.name); };
      const move = (delta) => () => {
        const j = i + delta;
        if (j < 0 || j >= ed.rows.length) return;
        [ed.rows[i], ed.rows[j]] = [ed.rows[j], ed.rows[i]];
        commit(step.name);
        drawSteps();
      };
      const providerSel = h("select", {
        "aria-label": "Provider",
        onchange: (ev) => { r.provider = ev.target.value; commit(step.name); drawSteps(); },
      }, providerOptions.map((p) => h("option", { value: p, selected: p === r.provider }, p || "any")));
      const num = (key, label, attrs) => h("label", { class: "field" }, h("span", null, label),
        h("input", { type: "number", value: r[key], placeholder: "default", oninput: set(key), "data-param": key, ...attrs }));
      return h("div", { class: "model-row", "data-index": i },
        h("label", { class: "field provider-field" }, h("span", null, "Provider"), providerSel),
        h("label", { class: "field model-field" }, h("span", null, "Model"),
          h("input", { type: "text", value: r.model, list: listId, oninput: set("model"), "data-field": "model", placeholder: "e.g. gpt-4o-mini or tier:fast", autocomplete: "off" }),
          h("datalist", { id: listId }, modelChoices(r.provider).map((m) => h("option", { value: m })))),
        num("temperature", "Temperature", { min: 0, max: 2, step: 0.1 }),
        num("max_tokens", "Max tokens", { min: 1, step: 1 }),
        num("top_p", "Top p", { min: 0, max: 1, step: 0.05 }),
        h("div", { class: "row-actions" },
          h("button", { class: "btn small ghost", type: "button", "aria-label": "Move up", disabled: i === 0, onclick: move(-1) }, "↑"),
          h("button", { class: "btn small ghost", type: "button", "aria-label": "Move down", disabled: i === ed.rows.length - 1, onclick: move(1) }, "↓"),
          h("button", {
            class: "btn small ghost danger", type: "button", "aria-label": "Remove model", disabled: ed.rows.length === 1,
            onclick: () => { ed.rows.splice(i, 1); commit(step.name); drawSteps(); },
          }, "✕")),
        h("div", { class: "problems" }));
    });
    const radio = (value, label) => h("label", null,
      h("input", {
        type: "radio", name: `routing-${step.name}`, value, checked: ed.routing === value,
        onchange: () => { ed.routing = value; commit(step.name); },
      }), label);
    return h("div", { class: "editor", "data-step-editor": step.name },
      h("div", { class: "row spread" },
        h("div", { class: "inline-radio", role: "radiogroup", "aria-label": "Routing" },
          radio("fallback", "Fallback (in order, first good answer)"),
          radio("parallel", "Parallel (every model)")),
        h("button", {
          class: "btn small", type: "button", "data-action": "add-model",
          onclick: () => { ed.rows.push({ id: ++rowSeq, provider: "", model: "", temperature: "", max_tokens: "", top_p: "" }); commit(step.name); drawSteps(); },
        }, "+ Add model")),
      rowEls);
  }

  function modelsSummary(step) {
    const cfg = draft.step_configs[step.name] || {};
    if (cfg.models) {
      return h("div", { class: "row" }, badge(cfg.routing || "fallback", "accent"),
        h("div", { class: "chips" }, cfg.models.filter((m) => m.model).map((m) => h("span", { class: "chip plain" },
          `${m.provider ? `${m.provider}/` : ""}${m.model}${m.parameters ? ` (${Object.entries(m.parameters).map(([k, v]) => `${k} ${v}`).join(", ")})` : ""}`))));
    }
    if (cfg.model) return h("div", { class: "chips" }, h("span", { class: "chip plain" }, cfg.model));
    return h("span", { class: "muted" }, `pipeline default: ${pipe.default_model || data.default_model}`);
  }

  function outputsFor(step) {
    const out = {};
    for (const n of step.needs) out[n] = lastOutputs[n] ?? `[sample output of ${n}: preview that step first for a real one]`;
    return out;
  }

  async function previewStep(step, resultBox, button) {
    button.disabled = true;
    replace(resultBox, h("div", { class: "row muted" }, spinner(), `Running ${step.name}…`));
    try {
      const res = await api(`/api/v1/pipeline/steps/${encodeURIComponent(step.name)}/execute`, {
        method: "POST",
        accept: [502],
        signal: ctx.signal,
        body: { pipeline: name, pipeline_config: draft, content: sample.value, context: { outputs: outputsFor(step) } },
      });
      if (res.status === "ok") lastOutputs[step.name] = res.output;
      replace(resultBox, stepResultCard(res));
    } catch (err) {
      if (err && err.name === "AbortError") return;
      replace(resultBox, banner("err", h("p", null, describeError(err))));
    } finally {
      button.disabled = false;
    }
  }

  function drawSteps() {
    replace(stepsBox, pipe.steps.map((step, index) => {
      const ed = editors.get(step.name);
      const resultBox = h("div", { class: "step-preview", "data-step-preview": step.name });
      const previewBtn = h("button", { class: "btn small primary", type: "button", "data-action": "preview-step" }, "Preview step");
      previewBtn.addEventListener("click", () => previewStep(step, resultBox, previewBtn));
      const editBtn = h("button", {
        class: "btn small", type: "button", "data-action": "edit-models", "aria-expanded": String(Boolean(ed && ed.open)),
        onclick: () => {
          if (!editors.has(step.name)) {
            const cfg = draft.step_configs[step.name] || {};
            editors.set(step.name, { rows: rowsOf(cfg, pipe.default_model || data.default_model), routing: cfg.routing || "fallback", open: false });
          }
          const e = editors.get(step.name);
          e.open = !e.open;
          drawSteps();
          drawProblems();
        },
      }, ed && ed.open ? "Done editing" : "Edit models");
      return h("article", { class: "card step-card", "data-step": step.name },
        h("header", null,
          h("span", { class: "row" }, h("span", { class: "step-index" }, String(index + 1)), h("span", { class: "title" }, step.name)),
          step.needs.length ? h("span", { class: "muted small" }, `reads ${step.needs.join(", ")}`) : null),
        h("div", { class: "body" },
          step.system ? h("div", null, h("div", { class: "muted small" }, "System"), h("pre", { class: "prompt" }, step.system)) : null,
          step.prompt ? h("div", null, h("div", { class: "muted small" }, "Prompt"), h("pre", { class: "prompt" }, step.prompt))
            : banner("warn", h("p", null, "No prompt configured for this step.")),
          h("div", null, h("div", { class: "muted small" }, "Models"), h("div", { "data-step-models": step.name }, modelsSummary(step))),
          ed && ed.open ? editorFor(step) : null,
          h("div", { "data-step-problems": step.name }),
          resultBox),
        h("footer", null, editBtn, previewBtn));
    }));
    drawProblems();
  }

  // -- running the whole pipeline ----------------------------------------------------
  runAllBtn.addEventListener("click", async () => {
    runAllBtn.disabled = true;
    replace(runBox, h("div", { class: "panel row muted" }, spinner(), "Running every step…"));
    try {
      const run = await api("/api/v1/pipeline", {
        method: "POST", accept: [502], signal: ctx.signal,
        body: { pipeline: name, pipeline_config: draft, content: sample.value },
      });
      Object.assign(lastOutputs, run.outputs || {});
      replace(runBox, h("section", { class: "stack", id: "pipeline-run-result", "data-run-id": run.run_id },
        h("div", { class: "row spread" },
          h("h2", null, "Run ", h("a", { href: `#/runs/${encodeURIComponent(run.run_id)}`, class: "mono" }, run.run_id.slice(0, 12))),
          h("span", { class: "row" }, badge(run.status, run.status === "ok" ? "ok" : "err"),
            h("span", { class: "muted small" }, `${fmtInt(run.total_tokens)} tokens · ${fmtCost(run.total_cost)} · ${fmtSeconds(run.total_latency)}`))),
        run.error ? banner("err", h("p", null, run.error)) : null,
        h("div", { class: "cards" }, run.steps.map(stepResultCard))));
    } catch (err) {
      if (err && err.name === "AbortError") return;
      replace(runBox, banner("err", h("p", null, describeError(err))));
    } finally {
      runAllBtn.disabled = false;
    }
  });

  resetBtn.addEventListener("click", () => {
    drafts.set(name, clone(original));
    Object.keys(draft).forEach((k) => delete draft[k]);
    Object.assign(draft, clone(original));
    editors.clear();
    replace(yamlBox);
    drawSteps();
    validate();
  });

  // -- saving ------------------------------------------------------------------------
  saveBtn.addEventListener("click", async () => {
    replace(yamlBox, h("div", { class: "row muted" }, spinner(), "Writing YAML…"));
    try {
      const res = await api("/api/v1/pipelines/yaml", {
        method: "POST", signal: ctx.signal,
        body: { pipeline: name, pipeline_config: draft, format: format.value },
      });
      const pre = h("pre", { class: "output yaml-out", id: "pipeline-yaml", "data-format": res.format }, res.yaml);
      replace(yamlBox,
        pre,
        h("div", { class: "row" },
          h("button", { class: "btn small", type: "button", onclick: async () => toast((await copyText(res.yaml)) ? "YAML copied" : "Copy failed: select the text") }, "Copy"),
          h("button", { class: "btn small", type: "button", onclick: () => download(res.filename, res.yaml) }, `Download ${res.filename}`)));
    } catch (err) {
      if (err && err.name === "AbortError") return;
      replace(yamlBox, banner("err", h("p", null, describeError(err))));
    }
  });

  drawSteps();
  validate();
  return undefined;
}
