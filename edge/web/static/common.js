// What the line screen and the manual coding table share: their words in two languages, requests
// with the login's CSRF token, and the technician's login dialog. Loaded before each page's own
// script, which names in `thisPage` what it does beyond this.
"use strict";

const $ = (id) => document.getElementById(id);

let words = null;                 // /api/i18n
let lang = localStorage.getItem("sortline.lang") === "en" ? "en" : "zh";
let session = { who: null, csrf: null };

// The page's own part: each page replaces what it needs.
const thisPage = {
  translate() {},                 // its words that are not a data-t text (a placeholder)
  showSession() {},               // what only a technician sees, after the login buttons are set
  sessionChanged() {},            // after a login or a logout
  loginClosed() {},               // the login dialog closed without a login
  render() {},                    // drawn again in the other language
};

function idx() { return lang === "zh" ? 0 : 1; }
function t(key, fields) {
  const pair = words && words.text[key];
  let s = pair ? pair[idx()] : key;
  for (const [k, v] of Object.entries(fields || {})) s = s.replaceAll("{" + k + "}", v);
  return s;
}
function pairOf(table, key) { return words && words[table][key]; }
function reasonLabel(r) { const p = pairOf("reasons", r); return p ? p[0][idx()] : r; }
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}

function translateStatic() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const e of document.querySelectorAll("[data-t]")) e.textContent = t(e.dataset.t);
  $("lang").textContent = lang === "zh" ? "EN" : "中文";
  thisPage.translate();
}

// ---- requests --------------------------------------------------------------------------------
async function post(path, body) {
  return fetch(path, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": session.csrf || "" },
    body: JSON.stringify(body || {}),
  });
}

async function errorText(resp) {
  try {
    const body = await resp.json();
    return t(body.error, body.fields) + (body.detail ? ": " + body.detail : "");
  } catch (err) {
    return `HTTP ${resp.status}`;
  }
}

// ---- the technician's login ------------------------------------------------------------------
// One dialog for both pages, written here beside the code that uses its ids; the page's own
// stylesheet sizes it.
const LOGIN_FORM = `
  <form id="login-form" autocomplete="off">
    <h2 data-t="technician"></h2>
    <label><span data-t="name"></span><input id="login-name" name="name" maxlength="40"></label>
    <label><span data-t="token"></span><input id="login-token" name="token" type="password"></label>
    <p id="login-error" class="error" hidden></p>
    <div class="buttons">
      <button type="submit" id="login-submit" data-t="login"></button>
      <button type="button" id="login-cancel">✕</button>
    </div>
  </form>`;
{
  const dialog = el("div", "modal");
  dialog.id = "login-dialog";
  dialog.hidden = true;
  dialog.innerHTML = LOGIN_FORM;
  document.body.append(dialog);
}

function showSession() {
  const inside = !!session.who;
  $("login-open").hidden = inside;
  $("who").hidden = !inside;
  $("who").textContent = inside ? t("logged_in_as") + session.who : "";
  $("logout").hidden = !inside;
  thisPage.showSession();
}

async function loadSession() {
  const r = await fetch("/api/session", { credentials: "same-origin" });
  session = await r.json();
  showSession();
}

async function login(ev) {
  ev.preventDefault();
  const r = await post("/api/login", { name: $("login-name").value, token: $("login-token").value });
  $("login-token").value = "";
  if (!r.ok) {
    $("login-error").textContent = await errorText(r);
    $("login-error").hidden = false;
    return;
  }
  session = await r.json();
  $("login-error").hidden = true;
  $("login-dialog").hidden = true;
  showSession();
  thisPage.sessionChanged();
}

async function logout() {
  await post("/api/logout", {});
  session = { who: null, csrf: null };
  showSession();
  thisPage.sessionChanged();
}

// The words, the language button and the login: what both pages do first when they start.
async function startCommon() {
  words = await (await fetch("/api/i18n")).json();
  translateStatic();
  $("lang").addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh";
    localStorage.setItem("sortline.lang", lang);
    translateStatic(); showSession(); thisPage.render();
  });
  $("login-open").addEventListener("click", () => { $("login-dialog").hidden = false; $("login-name").focus(); });
  $("login-cancel").addEventListener("click", () => { $("login-dialog").hidden = true; thisPage.loginClosed(); });
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
}
