// Small SVG charts for the dashboard, drawn with presentation attributes only (the page's CSP allows
// no inline style). Text in them is bilingual and follows the language toggle.
import { bi, currentLang, el } from "./common.js";

const SVG = "http://www.w3.org/2000/svg";
export const COLOURS = { accepted: "#0f7b3f", rejected: "#b3261e", empty: "#d5dbe1", grid: "#c9d1da", text: "#55606c" };

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

/** Stacked bars of accepted and rejected scans per minute; ``points`` are {label, accepted, rejected}. */
export function barsOverTime(container, points) {
  const width = 1200;
  const height = 190;
  const left = 44;
  const bottom = 28;
  const top = 26;
  const plotH = height - top - bottom;
  const max = niceCeiling(Math.max(1, ...points.map((p) => p.accepted + p.rejected)));
  const step = (width - left - 8) / Math.max(1, points.length);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "bars" });
  const total = points.reduce((sum, p) => sum + p.accepted + p.rejected, 0);
  chart.setAttribute("aria-label", currentLang() === "en" ? `${total} scans in the last ${points.length} minutes` : `近${points.length}分钟共核验${total}次`);
  for (const fraction of [0, 0.5, 1]) {
    const y = top + plotH * (1 - fraction);
    chart.append(svg("line", { x1: left, x2: width - 4, y1: y, y2: y, stroke: COLOURS.grid, "stroke-width": 1 }));
    const label = String(Math.round(max * fraction));
    chart.append(text(left - 6, y + 4, label, label, { "text-anchor": "end" }));
  }
  points.forEach((point, i) => {
    const x = left + i * step + step * 0.12;
    const w = step * 0.76;
    const hA = (point.accepted / max) * plotH;
    const hR = (point.rejected / max) * plotH;
    const group = svg("g");
    const title = svg("title");
    bi(title, `${point.label} 通过${point.accepted} 不通过${point.rejected}`, `${point.label} accepted ${point.accepted}, rejected ${point.rejected}`);
    group.append(title);
    if (hA > 0) group.append(svg("rect", { x, y: top + plotH - hA, width: w, height: hA, fill: COLOURS.accepted, class: "bar-accepted" }));
    if (hR > 0) group.append(svg("rect", { x, y: top + plotH - hA - hR, width: w, height: hR, fill: COLOURS.rejected, class: "bar-rejected" }));
    chart.append(group);
    if (i % 5 === 0 || i === points.length - 1) {
      chart.append(text(x + w / 2, height - 8, point.label, point.label, { "text-anchor": "middle" }));
    }
  });
  chart.append(svg("rect", { x: width - 250, y: 4, width: 14, height: 14, fill: COLOURS.accepted }));
  chart.append(text(width - 230, 16, "通过", "accepted"));
  chart.append(svg("rect", { x: width - 150, y: 4, width: 14, height: 14, fill: COLOURS.rejected }));
  chart.append(text(width - 130, 16, "不通过", "rejected"));
  container.replaceChildren(chart);
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
