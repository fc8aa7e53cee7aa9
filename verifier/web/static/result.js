// The result that fills the counter's screen: a large 通过 / 不通过, the licence, every reason.
// Colour is never the only signal: each verdict also has its own mark and words.
import { bi, el } from "./common.js";

const result = document.getElementById("result");
const PROVINCES = { SC: ["四川", "Sichuan"], CQ: ["重庆", "Chongqing"] };
// Reasons a clerk must be able to say to the holder in one sentence, shown above everything else.
const PLAIN = {
  REVOKED: ["证照已被签发单位注销或吊销，不能受理", "This licence has been revoked by its issuing unit"],
  REPLAYED: [
    "此亮证码已在其他窗口使用过（一次一验），请持证人在APP中重新亮证",
    "This code was already used at another counter (one-time use); ask the holder to show the licence again",
  ],
  ALREADY_USED_HERE: [
    "此亮证码已在本窗口用于其他业务或其他业务流水号，办理新业务请持证人在APP中重新亮证",
    "This code was already used at this counter for another business or serial number; ask for a fresh code",
  ],
  TOKEN_EXPIRED: ["亮证码已过期，请持证人在APP中刷新后重新亮证", "The code has expired; ask the holder to refresh it"],
};

function verdict(mark, zh, en) {
  const line = el("p", "verdict");
  line.append(el("span", "mark", mark), el("span", "word", zh, en));
  return line;
}

function show(className, ...children) {
  result.className = `result ${className}`;
  result.replaceChildren(...children);
}

export function renderPending() {
  show("pending", verdict("…", "核验中", "Verifying"));
}

/** The service could not decide (503, network, other refusals): never green. */
export function renderFailure(text) {
  show("unavailable", verdict("!", text.zh, text.en));
}

export function renderNotice(zh, en) {
  show("notice", verdict("?", zh, en));
}

function field(list, zh, en, value, valueEn) {
  list.append(el("dt", "", zh, en), el("dd", "", value, valueEn ?? value));
}

function licenceBlock(licence) {
  const list = el("dl", "licence");
  if (!licence) {
    list.append(el("dd", "untrusted", "证照信息无法确认（亮证码不可信）", "Licence details unknown (the code is not trusted)"));
    return list;
  }
  const [pzh, pen] = PROVINCES[licence.issuing_province] || [licence.issuing_province, licence.issuing_province];
  const unit = licence.issuing_unit?.name_zh || licence.issuing_unit?.code || "";
  field(list, "证照", "Licence", `${licence.name_zh}（清单第${licence.seq}项）`, `${licence.name_en} (list row ${licence.seq})`);
  field(list, "签发", "Issued by", `${pzh} · ${unit}`, `${pen} · ${unit}`);
  field(list, "持证人", "Holder", licence.holder || "—");
  field(list, "证照编号", "Licence no.", licence.licence_no || "—");
  field(list, "有效期", "Valid", `${licence.valid_from} 至 ${licence.valid_until}`, `${licence.valid_from} to ${licence.valid_until}`);
  return list;
}

function reasonsBlock(reasons) {
  const list = el("ol", "reasons");
  for (const reason of reasons) {
    const item = el("li", "");
    item.append(el("span", "message", reason.message_zh, reason.message_en), el("code", "", reason.code));
    list.append(item);
  }
  return list;
}

function metaBlock(doc, ctx) {
  const meta = el("dl", "meta");
  const when = new Date(doc.checked_at);
  const time = Number.isNaN(when.getTime()) ? doc.checked_at : when.toLocaleString("zh-CN", { hour12: false });
  const item = ctx.item ? [`（通办事项${ctx.item}）`, ` (item ${ctx.item})`] : ["", ""];
  field(meta, "业务", "Business", ctx.scenario.zh + item[0], ctx.scenario.en + item[1]);
  field(meta, "业务流水号", "Serial no.", ctx.serial || "—");
  field(meta, "操作员", "Operator", ctx.operator || "—");
  field(meta, "核验时间", "Checked at", time);
  field(meta, "核验编号", "Scan ID", doc.scan_id);
  return meta;
}

/** A decision object of POST /v1/scans. */
export function renderDecision(doc, ctx) {
  const accepted = doc.decision === "accepted";
  const head = el("div", "head");
  head.append(accepted ? verdict("✓", "通过", "Accepted") : verdict("✗", "不通过", "Rejected"));
  if (doc.cached) head.append(el("p", "cached", "重复扫码（缓存结果）", "Re-scan (cached result)"));
  const children = [head];
  for (const reason of doc.reasons) {
    const plain = PLAIN[reason.code];
    if (plain) children.push(el("p", `plain plain-${reason.code.toLowerCase()}`, `${plain[0]}（${reason.code}）`, `${plain[1]} (${reason.code})`));
  }
  const body = el("div", "body");
  const left = el("section", "part");
  left.append(el("h2", "", "证照信息", "Licence details"), licenceBlock(doc.licence));
  body.append(left);
  if (doc.reasons.length) {
    const right = el("section", "part");
    right.append(el("h2", "", "不通过原因", "Reasons"), reasonsBlock(doc.reasons));
    body.append(right);
  }
  children.push(body, metaBlock(doc, ctx));
  show(accepted ? "accepted" : "rejected", ...children);
}
