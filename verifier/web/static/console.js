// The counter console: sign in with the counter's key, pick the business (and its 川渝通办 item, where it
// has some), scan. A USB scanner types the code into the focused field and presses Enter; the camera and a
// dropped image feed the same path.
import { api, bi, el, failureText, signIn } from "./common.js";
import { renderDecision, renderFailure, renderNotice, renderPending } from "./result.js";
import { setupSources } from "./sources.js";

const $ = (id) => document.getElementById(id);
const tokenInput = $("token");
const scanButton = $("scan-button");
const scenarioSelect = $("scenario");
const itemSelect = $("item");
const state = { key: null, counter: null, busy: false };
const stored = {
  get: (name) => sessionStorage.getItem(`cy.console.${name}`) || "",
  set: (name, value) => sessionStorage.setItem(`cy.console.${name}`, value),
};

const session = signIn({
  storageKey: "cy.console.key",
  mainId: "desk",
  async check(key) {
    const { status, data } = await api("/v1/counters/me", { key });
    if (status === 200 && data) return { ok: true, info: data };
    if (status === 401 || status === 403) {
      return { ok: false, zh: "密钥无效：请核对窗口密钥", en: "Wrong key: check the counter's API key" };
    }
    return { ok: false, ...failureText(status, data) };
  },
  ready(key, counter) {
    state.key = key;
    state.counter = counter;
    openDesk(counter);
  },
});

function openDesk(counter) {
  const provinces = { SC: "Sichuan", CQ: "Chongqing" };
  bi(
    $("who"),
    `${counter.name_zh}（${counter.province_name_zh}）`,
    `${counter.id} (${provinces[counter.province] || counter.province})`,
  );
  $("who").hidden = false;
  scenarioSelect.replaceChildren();
  if (counter.scenarios.length === 0) {
    scenarioSelect.append(el("option", "", "本窗口尚未登记任何业务", "No business registered for this counter"));
    scenarioSelect.disabled = true;
    scanButton.disabled = true;
  }
  for (const scenario of counter.scenarios) {
    const option = el("option", "", scenario.name_zh, scenario.name_en);
    option.value = scenario.code;
    scenarioSelect.append(option);
  }
  const remembered = stored.get("scenario");
  if (counter.scenarios.some((s) => s.code === remembered)) scenarioSelect.value = remembered;
  showItems();
  $("serial").value = stored.get("serial");
  $("operator").value = stored.get("operator");
  $("desk").hidden = false;
  tokenInput.focus();
}

/** The 川渝通办 items of the chosen business, if it has any: a picker of its own, kept per business for the
 * session like the serial number; none chosen by default (the item is optional). */
function showItems() {
  const scenario = state.counter?.scenarios.find((s) => s.code === scenarioSelect.value);
  const items = scenario?.items || [];
  const offered = items.length > 0;
  for (const node of document.querySelectorAll(".item-field")) node.hidden = !offered;
  $("session-form").classList.toggle("with-item", offered);
  const none = el("option", "", "不指定事项", "No item");
  none.value = "";
  itemSelect.replaceChildren(none);
  for (const item of items) {
    const option = el("option", "", `${item.item} · ${item.name_zh}`, `Item ${item.item} · ${item.name_zh}`);
    option.value = String(item.item);
    itemSelect.append(option);
  }
  const remembered = stored.get(`item.${scenarioSelect.value}`);
  itemSelect.value = items.some((i) => String(i.item) === remembered) ? remembered : "";
}

scenarioSelect.addEventListener("change", () => {
  stored.set("scenario", scenarioSelect.value);
  showItems();
});
itemSelect.addEventListener("change", () => stored.set(`item.${scenarioSelect.value}`, itemSelect.value));
for (const select of [scenarioSelect, itemSelect]) {
  // Chosen with the mouse: back to the code field. With the keyboard, arrows change the value, so
  // focus stays until Enter.
  select.addEventListener("change", () => {
    if (!select.matches(":focus-visible")) tokenInput.focus();
  });
  select.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      tokenInput.focus();
    }
  });
}
// A USB scanner types wherever the focus is: if it is on a button or nowhere, send the keys to the code field.
document.addEventListener("keydown", (event) => {
  const target = event.target;
  const typing = target instanceof HTMLInputElement || target instanceof HTMLSelectElement;
  if (typing || $("desk").hidden || event.ctrlKey || event.metaKey || event.altKey || event.key.length !== 1) return;
  if (event.key === " " && target instanceof HTMLButtonElement) return; // Space presses the button
  tokenInput.focus();
});
for (const name of ["serial", "operator"]) {
  $(name).addEventListener("input", () => stored.set(name, $(name).value.trim()));
}
// Enter in the session fields keeps them and goes back to the code field, ready for the scanner.
$("session-form").addEventListener("submit", (event) => {
  event.preventDefault();
  tokenInput.focus();
});

$("scan-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = tokenInput.value;
  tokenInput.value = ""; // cleared at once, so the next scan types into an empty field
  submitToken(token);
});

async function submitToken(raw) {
  const token = raw.trim();
  if (!token || state.busy || !state.key) return;
  const scenario = scenarioSelect.value;
  const serial = $("serial").value.trim();
  const operator = $("operator").value.trim();
  const item = itemSelect.hidden ? "" : itemSelect.value;
  const body = { token, scenario };
  if (serial) body.serial_no = serial;
  if (operator) body.operator = operator;
  if (item) body.item = Number(item);
  state.busy = true;
  scanButton.disabled = true;
  renderPending();
  const { status, data } = await api("/v1/scans", { key: state.key, method: "POST", body });
  state.busy = false;
  scanButton.disabled = false;
  tokenInput.focus();
  if (status === 200 && data && (data.decision === "accepted" || data.decision === "rejected")) {
    const option = scenarioSelect.selectedOptions[0];
    renderDecision(data, {
      serial,
      operator,
      item,
      scenario: { zh: option?.dataset.zh || scenario, en: option?.dataset.en || scenario },
    });
  } else if (status === 401) {
    session.expired();
  } else {
    renderFailure(failureText(status, data));
  }
}

setupSources({
  submit: (token) => submitToken(token),
  notice: (zh, en) => {
    renderNotice(zh, en);
    tokenInput.focus();
  },
});
