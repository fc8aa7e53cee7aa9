// The trend of recognition (核验证照落地实效 over time): the last 90 days of the audit trail, read from
// GET /v1/reports — daily scans and acceptance, the same by licence type and by city, and the top rejection
// reasons of each week. Read at sign-in and every five minutes: the trail changes by the day, not the second.
import { barsOverTime, sparkBars, splitBar } from "./charts.js";
import { api, bi, el, pageData } from "./common.js";

const DAYS = 90;
const REFRESH_MS = 5 * 60 * 1000;
const CHINA_MS = 8 * 3600 * 1000; // the report's days are China's (UTC+8, no daylight saving)
const TOP_REASONS = 3;
const BREAKDOWNS = ["day,type", "day,city", "day,reason"];
const $ = (id) => document.getElementById(id);
const state = { key: null, timer: 0, names: null, expired: null };

/** Draw the trend for the administrator's ``key`` and keep it fresh; ``expired()`` when the key stops working. */
export function startTrend(key, { names, expired }) {
  Object.assign(state, { key, names, expired });
  $("trend").hidden = false;
  load();
}

const addDays = (day, n) => new Date(Date.parse(`${day}T00:00:00Z`) + n * 86400000).toISOString().slice(0, 10);

function daysFrom(first, last) {
  const days = [];
  for (let day = first; day <= last && days.length <= 2 * DAYS; day = addDays(day, 1)) days.push(day);
  return days;
}

async function load() {
  clearTimeout(state.timer);
  const to = new Date(Date.now() + CHINA_MS).toISOString().slice(0, 10);
  const from = addDays(to, 1 - DAYS);
  const answers = await Promise.all(
    BREAKDOWNS.map((by) => api(`/v1/reports?${new URLSearchParams({ from, to, by })}`, { key: state.key })),
  );
  if (answers.some((a) => a.status === 401 || a.status === 403)) {
    state.expired();
    return;
  }
  const failed = answers.find((a) => a.status !== 200 || !a.data || !Array.isArray(a.data.rows));
  if (failed) showFailure(failed.status);
  else draw(...answers.map((a) => a.data));
  state.timer = setTimeout(load, REFRESH_MS);
}

/** Say why there is no (new) trend; what was drawn before stays, marked stale by the status line. */
function showFailure(status) {
  const notEnabled = status === 404;
  bi(
    $("trend-status"),
    notEnabled ? "本服务未开启核验留痕，暂无趋势" : `趋势暂不可用（HTTP ${status || "无法连接"}），稍后自动重试`,
    notEnabled
      ? "The audit trail is not enabled on this service: no trend yet"
      : `Trend unavailable (HTTP ${status || "no connection"}); retrying shortly`,
  );
  $("trend-status").className = "status stale";
}

/** The rows of a report grouped by ``keyOf(row)``, each group with its answers per day of ``days``. */
function byDay(rows, keyOf, days) {
  const groups = new Map();
  for (const row of rows) {
    const key = keyOf(row);
    if (!groups.has(key)) groups.set(key, new Map());
    const perDay = groups.get(key);
    const counts = perDay.get(row.day) || { accepted: 0, rejected: 0 };
    perDay.set(row.day, { accepted: counts.accepted + row.accepted, rejected: counts.rejected + row.rejected });
  }
  return [...groups].map(([key, perDay]) => {
    const points = days.map((day) => ({ day, ...(perDay.get(day) || { accepted: 0, rejected: 0 }) }));
    const accepted = points.reduce((sum, p) => sum + p.accepted, 0);
    const rejected = points.reduce((sum, p) => sum + p.rejected, 0);
    return { key, points, accepted, rejected };
  });
}

function draw(types, cities, reasons) {
  const days = daysFrom(types.from, types.to);
  const time = new Date().toLocaleTimeString("zh-CN", { hour12: false });
  bi(
    $("trend-status"),
    `${types.from} 至 ${types.to}（中国时间，共${days.length}天）· 来自核验留痕 · 每5分钟刷新 · 最后更新 ${time}`,
    `${types.from} to ${types.to} (China time, ${days.length} days) · from the audit trail · refreshed every 5 min · last update ${time}`,
  );
  $("trend-status").className = "status";
  const [daily] = byDay(types.rows, () => "all", days); // each answer has one type: their sum is the day's
  const points = (daily?.points || days.map((day) => ({ day, accepted: 0, rejected: 0 }))).map((p) => ({
    ...p,
    label: p.day.slice(5),
    title: p.day,
  }));
  barsOverTime($("trend-days"), points, {
    labelEvery: 15,
    rateLine: true,
    span: { zh: (n) => `近${n}天`, en: (n) => `the last ${n} days` },
  });
  const typeGroups = byDay(types.rows, (row) => row.type ?? "-", days);
  const cityGroups = byDay(cities.rows, (row) => (row.city === null || row.city === undefined ? null : String(row.city)), days);
  $("trend-types").replaceChildren(trendTable(typeGroups, state.names.type, ["证照类型", "Licence type"]));
  $("trend-cities").replaceChildren(trendTable(cityGroups, cityName, ["城市", "City"]));
  $("trend-weeks").replaceChildren(weeksTable(points, reasons.rows, days));
}

function cityName(code) {
  const known = code === null ? null : pageData.divisions?.[code];
  if (known) return { zh: known.zh, en: known.en };
  return code === null ? { zh: "未知城市", en: "unknown city" } : { zh: code, en: code };
}

/** One row per licence type or city, most rejections first: its 90 days' scans, acceptance and daily bars. */
function trendTable(groups, name, [headZh, headEn]) {
  groups.sort((a, b) => b.rejected - a.rejected || b.accepted + b.rejected - (a.accepted + a.rejected));
  const table = el("table", "rates trend-table");
  const head = el("tr", "");
  head.append(
    el("th", "", headZh, headEn),
    el("th", "num", "核验", "Scans"),
    el("th", "", "通过率", "Accepted"),
    el("th", "", `每日（近${DAYS}天）`, `Daily (last ${DAYS} days)`),
  );
  table.append(head);
  if (groups.length === 0) table.append(emptyRow(4));
  for (const group of groups) {
    const label = name(group.key);
    const row = el("tr", "");
    const rate = el("td", "");
    rate.append(splitBar(group.accepted, group.rejected));
    const spark = el("td", "spark-cell");
    spark.append(sparkBars(group.points));
    row.append(el("td", "name", label.zh, label.en), el("td", "num", String(group.accepted + group.rejected)), rate, spark);
    table.append(row);
  }
  return table;
}

function emptyRow(columns) {
  const row = el("tr", "");
  const td = el("td", "none", "暂无数据", "No scans yet");
  td.colSpan = columns;
  row.append(td);
  return row;
}

/** Monday of the week (China's calendar) a day falls in. */
function monday(day) {
  const weekday = new Date(`${day}T00:00:00Z`).getUTCDay();
  return addDays(day, -((weekday + 6) % 7));
}

/** Newest week first: its rejections and the reasons most of them carried (a rejection may carry several). */
function weeksTable(points, reasonRows, days) {
  const weeks = new Map();
  for (const point of points) {
    const start = monday(point.day);
    if (!weeks.has(start)) weeks.set(start, { days: [], rejected: 0, reasons: new Map() });
    const week = weeks.get(start);
    week.days.push(point.day);
    week.rejected += point.rejected;
  }
  for (const row of reasonRows) {
    const week = row.reason && days.includes(row.day) ? weeks.get(monday(row.day)) : undefined;
    if (week) week.reasons.set(row.reason, (week.reasons.get(row.reason) || 0) + row.answers);
  }
  const table = el("table", "rates weeks");
  const head = el("tr", "");
  head.append(el("th", "", "周", "Week"), el("th", "num", "不通过", "Rejected"), el("th", "", "主要原因", "Top reasons"));
  table.append(head);
  for (const week of [...weeks.values()].reverse()) {
    const first = week.days[0].slice(5);
    const last = week.days.at(-1).slice(5);
    const row = el("tr", "");
    const cell = el("td", "");
    const chips = el("div", "chips");
    cell.append(chips);
    const top = [...week.reasons].sort(([, a], [, b]) => b - a).slice(0, TOP_REASONS);
    if (top.length === 0) chips.append(el("span", "none-ok", "无不通过", "none"));
    for (const [code, count] of top) {
      const reason = state.names.reason(code);
      const share = week.rejected ? Math.round((count / week.rejected) * 100) : 0;
      const chip = el("span", "chip", `${reason.zh} ×${count}（${share}%）`, `${reason.en} ×${count} (${share}%)`);
      chip.title = code;
      chips.append(chip);
    }
    row.append(el("td", "week", `${first} 至 ${last}`, `${first} to ${last}`), el("td", "num", String(week.rejected)), cell);
    table.append(row);
  }
  return table;
}
