// The recognition dashboard (核验证照落地实效): polls GET /v1/stats with the administrator's key and draws
// the figures, problems first; below them the trend of the last 90 days (trend.js).
import { barsOverTime, rateClass, splitBar } from "./charts.js";
import { api, bi, el, failureText, pageData, signIn } from "./common.js";
import { startTrend } from "./trend.js";

const POLL_MS = 3000;
const MINUTES = 30;
const $ = (id) => document.getElementById(id);
const state = { key: null, timer: 0 };
const PROVINCE_EN = { SC: "Sichuan", CQ: "Chongqing" };

const names = {
  type: (code) => pageData.types?.[code] || { zh: code === "-" ? "未知证照" : code, en: code === "-" ? "unknown" : code },
  scenario: (code) => pageData.scenarios?.[code] || { zh: code, en: code },
  reason: (code) => pageData.reasons?.[code] || { zh: code, en: code },
  province: (code) => ({ zh: pageData.provinces?.[code] || "未知", en: PROVINCE_EN[code] || "unknown" }),
};

const session = signIn({
  storageKey: "cy.dashboard.key",
  mainId: "board",
  async check(key) {
    const { status, data } = await api("/v1/stats", { key });
    if (status === 200 && data) return { ok: true, info: data };
    if (status === 401) return { ok: false, zh: "密钥无效：请核对管理员密钥", en: "Wrong key: check the administrator key" };
    if (status === 403) return { ok: false, zh: "这是窗口密钥，统计需要管理员密钥", en: "This is a counter key; statistics need the administrator key" };
    return { ok: false, ...failureText(status, data) };
  },
  ready(key, stats) {
    state.key = key;
    bi($("who"), "管理员", "Administrator");
    $("who").hidden = false;
    $("board").hidden = false;
    draw(stats);
    schedule();
    startTrend(key, { names, expired: () => session.expired() });
  },
});

function schedule() {
  clearTimeout(state.timer);
  state.timer = setTimeout(poll, POLL_MS);
}

async function poll() {
  const { status, data } = await api("/v1/stats", { key: state.key });
  if (status === 401 || status === 403) {
    session.expired();
    return;
  }
  if (status === 200 && data) draw(data);
  else {
    const text = failureText(status, data);
    bi($("status"), `统计暂不可用：${text.zh}`, `Statistics unavailable: ${text.en}`);
    $("status").className = "status stale";
  }
  schedule();
}

function draw(stats) {
  const now = new Date();
  const time = now.toLocaleTimeString("zh-CN", { hour12: false });
  bi($("status"), `每${POLL_MS / 1000}秒自动刷新 · 最后更新 ${time}`, `Refreshed every ${POLL_MS / 1000} s · last update ${time}`);
  $("status").className = "status";
  drawKpis(stats.total, stats.rescans);
  drawProblems(stats);
  barsOverTime($("minutes"), minutes(stats.per_minute, now));
  drawMatrix(stats.by_route);
  $("scenarios").replaceChildren(rateTable(stats.by_scenario, names.scenario, ["业务场景", "Business"]));
  $("types").replaceChildren(rateTable(stats.by_type, names.type, ["证照类型", "Licence type"], stats.reasons_by_type));
}

function drawKpis(total, rescans) {
  const rate = total.acceptance_rate === null ? "—" : `${Math.round(total.acceptance_rate * 1000) / 10}%`;
  const tiles = [
    ["核验总数", "Scans", total.scans, ""],
    ["通过", "Accepted", total.accepted, "ok"],
    ["不通过", "Rejected", total.rejected, "bad"],
    ["通过率", "Acceptance rate", rate, ""],
    ["重复扫码", "Re-scans (cached)", rescans, ""],
  ];
  $("kpis").replaceChildren(
    ...tiles.map(([zh, en, value, tone]) => {
      const tile = el("div", `kpi ${tone}`);
      tile.append(el("span", "value", String(value)), el("span", "label", zh, en));
      return tile;
    }),
  );
}

function drawProblems(stats) {
  const rows = [];
  for (const [type, reasons] of Object.entries(stats.reasons_by_type)) {
    for (const [code, count] of Object.entries(reasons)) rows.push({ type, code, count });
  }
  rows.sort((a, b) => b.count - a.count);
  const list = $("problems");
  if (rows.length === 0) {
    list.replaceChildren(el("li", "none", "暂无不通过记录", "No rejections so far"));
    return;
  }
  const rejected = Math.max(1, stats.total.rejected);
  list.replaceChildren(
    ...rows.slice(0, 6).map((row) => {
      const reason = names.reason(row.code);
      const type = names.type(row.type);
      const share = Math.round((row.count / rejected) * 100);
      const item = el("li", "");
      item.append(
        el("span", "count", `${row.count}`),
        el("span", "what", reason.zh, reason.en),
        el("span", "where", `${type.zh} · ${row.code} · 占不通过${share}%`, `${type.en} · ${row.code} · ${share}% of rejections`),
      );
      return item;
    }),
  );
}

function minuteKey(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getUTCFullYear()}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}`;
}

function minutes(perMinute, now) {
  const byKey = new Map(perMinute.map((m) => [m.minute, m]));
  const points = [];
  for (let i = MINUTES - 1; i >= 0; i -= 1) {
    const at = new Date(now.getTime() - i * 60000);
    const found = byKey.get(minuteKey(at)) || { accepted: 0, rejected: 0 };
    const label = at.toLocaleTimeString("zh-CN", { hour: "2-digit", minute: "2-digit", hour12: false });
    points.push({ label, accepted: found.accepted, rejected: found.rejected });
  }
  return points;
}

function drawMatrix(byRoute) {
  const issuing = ["SC", "CQ"];
  if (Object.keys(byRoute).some((route) => route.startsWith("-->"))) issuing.push("-");
  const table = el("table", "matrix");
  const head = el("tr", "");
  head.append(el("th", "corner", "签发 ＼ 核验", "Issued \\ scanned"));
  for (const p of ["SC", "CQ"]) head.append(el("th", "", `${names.province(p).zh}窗口`, `${names.province(p).en} counters`));
  table.append(head);
  for (const ip of issuing) {
    const row = el("tr", "");
    row.append(el("th", "", `${names.province(ip).zh}签发`, `Issued in ${names.province(ip).en}`));
    for (const cp of ["SC", "CQ"]) {
      const cell = byRoute[`${ip}->${cp}`] || { accepted: 0, rejected: 0 };
      const total = cell.accepted + cell.rejected;
      const td = el("td", `${rateClass(cell.accepted, cell.rejected)}${ip !== cp && ip !== "-" ? " mutual" : ""}`);
      td.append(el("span", "big", String(total)), el("span", "small", "次核验", "scans"), splitBar(cell.accepted, cell.rejected));
      if (ip !== cp && ip !== "-") td.append(el("span", "tag", "互认", "mutual"));
      row.append(td);
    }
    table.append(row);
  }
  $("matrix").replaceChildren(table);
}

/** Rows with the most rejections first: where recognition fails is what the centres look at. */
function rateTable(byKey, name, [headZh, headEn], reasonsBy) {
  const entries = Object.entries(byKey).sort(
    ([, a], [, b]) => b.rejected - a.rejected || b.accepted + b.rejected - (a.accepted + a.rejected),
  );
  const table = el("table", "rates");
  const head = el("tr", "");
  head.append(el("th", "", headZh, headEn), el("th", "num", "核验", "Scans"), el("th", "", "通过率", "Accepted"));
  if (reasonsBy) head.append(el("th", "", "不通过原因", "Rejection reasons"));
  table.append(head);
  if (entries.length === 0) {
    const row = el("tr", "");
    const td = el("td", "none", "暂无数据", "No scans yet");
    td.colSpan = reasonsBy ? 4 : 3;
    row.append(td);
    table.append(row);
  }
  for (const [key, counts] of entries) {
    const label = name(key);
    const row = el("tr", "");
    const rate = el("td", "");
    rate.append(splitBar(counts.accepted, counts.rejected));
    row.append(el("td", "name", label.zh, label.en), el("td", "num", String(counts.accepted + counts.rejected)), rate);
    if (reasonsBy) {
      const cell = el("td", "");
      const chips = el("div", "chips");
      cell.append(chips);
      for (const [code, count] of Object.entries(reasonsBy[key] || {})) {
        const reason = names.reason(code);
        chips.append(el("span", "chip", `${reason.zh} ×${count}`, `${reason.en} ×${count}`));
      }
      row.append(cell);
    }
    table.append(row);
  }
  return table;
}
