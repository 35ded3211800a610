// Inline SVG charts: a line chart and a stacked bar chart over time buckets,
// each with axes, grid lines, a legend and a tooltip (<title>) per point.
// Drawn in a fixed viewBox and scaled to the container's width.

import { h, s } from "./ui.js";

export const PALETTE = [
  "#4353c9", "#e07b39", "#2a9d8f", "#d1495b", "#8d6cc9",
  "#e9b52f", "#3d8fd1", "#6c8a3a", "#b5557f", "#6b7280",
];

const W = 640;
const H = 240;
const M = { top: 14, right: 14, bottom: 30, left: 60 };

/** A round upper bound for the y axis (1, 2, 2.5, 5 × a power of ten). */
export function niceMax(v) {
  if (!(v > 0)) return 1;
  const e = 10 ** Math.floor(Math.log10(v));
  const f = v / e;
  const n = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
  return n * e;
}

function timeLabel(t, span) {
  const d = new Date(t * 1000);
  if (span > 2 * 86400) return d.toLocaleDateString("en-GB", { day: "2-digit", month: "short" });
  return d.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" });
}

function frame(xs, yMax, yFormat) {
  // Axes, horizontal grid lines with y labels, and up to 6 time labels.
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const g = s("g", { class: "axis" });
  const ticks = 4;
  for (let i = 0; i <= ticks; i += 1) {
    const v = (yMax * i) / ticks;
    const y = M.top + plotH - (plotH * i) / ticks;
    g.appendChild(s("line", { class: i ? "grid-line" : null, x1: M.left, x2: W - M.right, y1: y, y2: y }));
    g.appendChild(s("text", { x: M.left - 8, y: y + 4, "text-anchor": "end" }, yFormat(v)));
  }
  const n = xs.length;
  const span = n > 1 ? xs[n - 1] - xs[0] : 0;
  const every = Math.max(1, Math.ceil(n / 6));
  for (let i = 0; i < n; i += every) {
    const x = M.left + (plotW * (i + 0.5)) / n;
    g.appendChild(s("text", { x, y: H - 8, "text-anchor": "middle" }, timeLabel(xs[i], span)));
  }
  return { g, plotW, plotH };
}

function legend(series) {
  return h("div", { class: "legend" }, series.map((sr) => {
    const swatch = h("i", { "aria-hidden": "true" });
    swatch.style.background = sr.color;
    return h("span", null, swatch, sr.name);
  }));
}

function emptyNote(svg, text) {
  svg.appendChild(s("text", { class: "empty-note", x: W / 2, y: H / 2, "text-anchor": "middle" }, text));
}

function colored(series) {
  return series.map((sr, i) => ({ ...sr, color: sr.color || PALETTE[i % PALETTE.length] }));
}

/**
 * Lines over time buckets.
 * xs: bucket start times (epoch seconds); series: [{name, values: [number|null]}];
 * a null value breaks the line (no data in that bucket).
 */
export function lineChart({ xs, series, yFormat = String, yMax = null, label = "chart", emptyText = "No data in this window" }) {
  const all = colored(series);
  const values = all.flatMap((sr) => sr.values.filter((v) => v !== null && v !== undefined));
  const top = yMax ?? niceMax(Math.max(0, ...values));
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label });
  const { g, plotW, plotH } = frame(xs, top, yFormat);
  svg.appendChild(g);
  if (!values.length) emptyNote(svg, emptyText);
  const n = xs.length;
  const px = (i) => M.left + (plotW * (i + 0.5)) / n;
  const py = (v) => M.top + plotH - (plotH * Math.min(v, top)) / top;
  for (const sr of all) {
    // One path per unbroken run of values.
    let d = "";
    let open = false;
    sr.values.forEach((v, i) => {
      if (v === null || v === undefined) { open = false; return; }
      d += `${open ? "L" : "M"}${px(i).toFixed(1)},${py(v).toFixed(1)} `;
      open = true;
    });
    if (d) svg.appendChild(s("path", { d, fill: "none", stroke: sr.color, "stroke-width": 2, "stroke-linejoin": "round" }));
    sr.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      svg.appendChild(s("circle", { cx: px(i), cy: py(v), r: 3, fill: sr.color },
        s("title", null, `${sr.name} · ${timeLabel(xs[i], 0)} · ${yFormat(v)}`)));
    });
  }
  return h("div", { class: "chart" }, svg, legend(all));
}

/**
 * Stacked bars over time buckets: series [{name, values: [number]}], one bar
 * per bucket, one segment per series.
 */
export function stackedBars({ xs, series, yFormat = String, label = "chart", emptyText = "No data in this window" }) {
  const all = colored(series);
  const n = xs.length;
  const sums = xs.map((_, i) => all.reduce((acc, sr) => acc + (sr.values[i] || 0), 0));
  const top = niceMax(Math.max(0, ...sums));
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label });
  const { g, plotW, plotH } = frame(xs, top, yFormat);
  svg.appendChild(g);
  if (!sums.some((v) => v > 0)) emptyNote(svg, emptyText);
  const slot = plotW / Math.max(1, n);
  const bw = Math.max(2, Math.min(36, slot * 0.7));
  for (let i = 0; i < n; i += 1) {
    let y = M.top + plotH;
    const x = M.left + slot * i + (slot - bw) / 2;
    for (const sr of all) {
      const v = sr.values[i] || 0;
      if (v <= 0) continue;
      const hgt = Math.max(1, (plotH * v) / top);
      y -= hgt;
      svg.appendChild(s("rect", { x: x.toFixed(1), y: y.toFixed(1), width: bw.toFixed(1), height: hgt.toFixed(1), fill: sr.color, rx: 1.5 },
        s("title", null, `${sr.name} · ${timeLabel(xs[i], 0)} · ${yFormat(v)}`)));
    }
  }
  return h("div", { class: "chart" }, svg, legend(all));
}
