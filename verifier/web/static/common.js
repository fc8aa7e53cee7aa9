// Shared by the console and the dashboard: the language toggle, the JSON API, and signing in with a key
// that stays in this tab's sessionStorage.

export const pageData = JSON.parse(document.getElementById("page-data")?.textContent || "{}");

let lang = sessionStorage.getItem("cy.lang") === "en" ? "en" : "zh";
const langListeners = [];

export function currentLang() {
  return lang;
}

export function onLang(listener) {
  langListeners.push(listener);
}

/** Fill an element (HTML or SVG) with bilingual text that follows the toggle. */
export function bi(el, zh, en) {
  el.dataset.zh = zh;
  el.dataset.en = en ?? zh;
  el.textContent = lang === "en" ? el.dataset.en : zh;
  return el;
}

/** A new element with a class and, optionally, bilingual text. */
export function el(tag, className, zh, en) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (zh !== undefined) bi(node, zh, en);
  return node;
}

function applyLang() {
  document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
  for (const node of document.querySelectorAll("[data-en]")) {
    if (node.dataset.zh === undefined) node.dataset.zh = node.textContent;
    node.textContent = lang === "en" ? node.dataset.en : node.dataset.zh;
  }
  document.getElementById("lang")?.setAttribute("aria-pressed", String(lang === "en"));
  for (const listener of langListeners) listener(lang);
}

document.getElementById("lang")?.addEventListener("click", () => {
  lang = lang === "en" ? "zh" : "en";
  sessionStorage.setItem("cy.lang", lang);
  applyLang();
});
if (lang === "en") applyLang();

/** Call the JSON API; never throws. status 0 means the service could not be reached. */
export async function api(path, { key, method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  try {
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    return { status: response.status, data };
  } catch {
    return { status: 0, data: null };
  }
}

/** Wire the sign-in form: ``check(key)`` answers {ok, info, zh, en}; ``ready(key, info)`` opens the page. */
export function signIn({ storageKey, mainId, check, ready }) {
  const form = document.getElementById("signin-form");
  const input = document.getElementById("key");
  const error = document.getElementById("signin-error");
  const section = document.getElementById("signin");
  const signout = document.getElementById("signout");

  async function attempt(key, remembered) {
    const answer = await check(key);
    if (!answer.ok) {
      sessionStorage.removeItem(storageKey);
      section.hidden = false;
      bi(error, answer.zh, answer.en);
      if (!remembered) input.select();
      input.focus();
      return;
    }
    sessionStorage.setItem(storageKey, key);
    input.value = "";
    error.textContent = "";
    section.hidden = true;
    signout.hidden = false;
    ready(key, answer.info);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (key) attempt(key, false);
  });
  signout.addEventListener("click", () => {
    sessionStorage.removeItem(storageKey);
    window.location.reload();
  });
  const remembered = sessionStorage.getItem(storageKey);
  if (remembered) {
    attempt(remembered, true);
  } else {
    section.hidden = false;
    input.focus();
  }
  return {
    /** The key stopped working (401): back to the form, saying so. */
    expired() {
      sessionStorage.removeItem(storageKey);
      document.getElementById(mainId).hidden = true;
      document.getElementById("who").hidden = true;
      signout.hidden = true;
      section.hidden = false;
      bi(error, "密钥已失效或已更换，请重新登录", "The key is no longer valid; please sign in again");
      input.focus();
    },
  };
}

/** The plain words for a failed API call. */
export function failureText(status, data) {
  if (status === 0 || status >= 500) {
    return { zh: "暂时无法核验，请稍后重试", en: "Cannot verify now, please retry shortly" };
  }
  const detail = data && data.detail ? `（${data.detail}）` : "";
  return { zh: `请求未被受理 HTTP ${status}${detail}`, en: `Request refused: HTTP ${status}${detail}` };
}
