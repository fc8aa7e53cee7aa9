// Small SVG charts for the dashboard, drawn with presentation attributes only (the page's CSP allows
// no inline style). Text in them is bilingual and follows the language toggle.
import { bi, currentLang, el } from "./common.js";

const SVG = "http://www.w3.org/2000/svg";
export const COLOURS = {
  accepted: "#0f7b3f", rejected: "#b3261e", empty: "#d5dbe1", grid: "#c9d1da", text: "#55606c", rate: "#0b57a4",
};

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

function text(x, y, zh, en, attrs = {}) {
  const node = svg("text", { x, y, fill: COLOURS.text, "font-size": 13, ...attrs });
  return bi(node, zh, en);
}

function niceCeiling(value) {
  if (value <= 5) return 5;
  const step = 10 ** Math.floor(Math.log10(value));
  return Math.ceil(value / step) * step;
}

const PER_MINUTE = { zh: (n) => `近${n}分钟`, en: (n) => `the last ${n} minutes` };

/** Stacked bars of accepted and rejected scans over time; ``points`` are {label, title?, accepted, rejected}.
 * Every ``labelEvery``-th bar is labelled; ``span`` words the period for screen readers; ``rateLine`` adds
 * the acceptance rate of each bar as a line on a 0–100% scale of its own (right). */
export function barsOverTime(container, points, { labelEvery = 5, span = PER_MINUTE, rateLine = false } = {}) {
  const width = 1200;
  const height = 190;
  const left = 44;
  const right = rateLine ? 48 : 4;
  const bottom = 28;
  const top = 26;
  const plotH = height - top - bottom;
  const max = niceCeiling(Math.max(1, ...points.map((p) => p.accepted + p.rejected)));
  const step = (width - left - right - 4) / Math.max(1, points.length);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "bars" });
  const total = points.reduce((sum, p) => sum + p.accepted + p.rejected, 0);
  const n = points.length;
  chart.setAttribute("aria-label", currentLang() === "en" ? `${total} scans in ${span.en(n)}` : `${span.zh(n)}共核验${total}次`);
  for (const fraction of [0, 0.5, 1]) {
    const y = top + plotH * (1 - fraction);
    chart.append(svg("line", { x1: left, x2: width - right, y1: y, y2: y, stroke: COLOURS.grid, "stroke-width": 1 }));
    const label = String(Math.round(max * fraction));
    chart.append(text(left - 6, y + 4, label, label, { "text-anchor": "end" }));
    if (rateLine) {
      const percent = `${Math.round(fraction * 100)}%`;
      chart.append(text(width - right + 6, y + 4, percent, percent, { fill: COLOURS.rate }));
    }
  }
  const segments = [[]];
  points.forEach((point, i) => {
    const x = left + i * step + step * 0.12;
    const w = step * 0.76;
    const hA = (point.accepted / max) * plotH;
    const hR = (point.rejected / max) * plotH;
    const group = svg("g", { class: "bar" });
    const title = svg("title");
    const when = point.title || point.label;
    bi(title, `${when} 通过${point.accepted} 不通过${point.rejected}`, `${when} accepted ${point.accepted}, rejected ${point.rejected}`);
    group.append(title);
    if (hA > 0) group.append(svg("rect", { x, y: top + plotH - hA, width: w, height: hA, fill: COLOURS.accepted, class: "bar-accepted" }));
    if (hR > 0) group.append(svg("rect", { x, y: top + plotH - hA - hR, width: w, height: hR, fill: COLOURS.rejected, class: "bar-rejected" }));
    chart.append(group);
    if (i % labelEvery === 0 || i === points.length - 1) {
      chart.append(text(x + w / 2, height - 8, point.label, point.label, { "text-anchor": "middle" }));
    }
    // A day without scans has no rate: the line breaks there rather than dropping to 0%.
    const scans = point.accepted + point.rejected;
    if (scans) segments.at(-1).push(`${x + w / 2},${top + plotH * (1 - point.accepted / scans)}`);
    else if (segments.at(-1).length) segments.push([]);
  });
  if (rateLine) {
    for (const segment of segments.filter((s) => s.length)) {
      chart.append(svg("polyline", { points: segment.join(" "), fill: "none", stroke: COLOURS.rate, "stroke-width": 2, class: "rate-line" }));
    }
  }
  const legend = [
    [COLOURS.accepted, "通过", "accepted"],
    [COLOURS.rejected, "不通过", "rejected"],
    ...(rateLine ? [[COLOURS.rate, "通过率", "acceptance rate"]] : []),
  ];
  legend.forEach(([colour, zh, en], i) => {
    const x = width - right - 100 * (legend.length - i) - 50;
    chart.append(svg("rect", { x, y: 4, width: 14, height: 14, fill: colour }));
    chart.append(text(x + 20, 16, zh, en));
  });
  container.replaceChildren(chart);
}

/** A small chart of one row's days: stacked accepted and rejected bars on the row's own scale. */
export function sparkBars(points) {
  const barW = 3;
  const height = 28;
  const max = Math.max(1, ...points.map((p) => p.accepted + p.rejected));
  const chart = svg("svg", {
    viewBox: `0 0 ${points.length * barW} ${height}`, preserveAspectRatio: "none", class: "spark", "aria-hidden": "true",
  });
  points.forEach((point, i) => {
    const hA = (point.accepted / max) * height;
    const hR = (point.rejected / max) * height;
    if (hA > 0) chart.append(svg("rect", { x: i * barW, y: height - hA, width: barW - 0.6, height: hA, fill: COLOURS.accepted }));
    if (hR > 0) chart.append(svg("rect", { x: i * barW, y: height - hA - hR, width: barW - 0.6, height: hR, fill: COLOURS.rejected }));
  });
  return chart;
}

/** One horizontal bar split into accepted and rejected, with the acceptance rate beside it. */
export function splitBar(accepted, rejected) {
  const wrap = el("span", "split");
  const total = accepted + rejected;
  const chart = svg("svg", { viewBox: "0 0 200 16", preserveAspectRatio: "none", class: "split-bar", "aria-hidden": "true" });
  if (total === 0) {
    chart.append(svg("rect", { x: 0, y: 0, width: 200, height: 16, fill: COLOURS.empty }));
  } else {
    const w = (accepted / total) * 200;
    chart.append(svg("rect", { x: 0, y: 0, width: w, height: 16, fill: COLOURS.accepted }));
    chart.append(svg("rect", { x: w, y: 0, width: 200 - w, height: 16, fill: COLOURS.rejected }));
  }
  const rate = total ? `${Math.round((accepted / total) * 1000) / 10}%` : "—";
  wrap.append(chart, el("span", "rate", rate));
  return wrap;
}

/** The CSS class of a cell coloured by acceptance rate (classes, not inline style: CSP). */
export function rateClass(accepted, rejected) {
  const total = accepted + rejected;
  if (!total) return "rate-none";
  const rate = accepted / total;
  if (rate >= 0.9) return "rate-good";
  if (rate >= 0.7) return "rate-fair";
  if (rate >= 0.4) return "rate-poor";
  return "rate-bad";
}
