// The manual coding table: a handheld scanner types a waybill and Enter into #waybill; the page
// shows the chute the running plan gives it, the destination, the courier and the parcel's image.
// The input keeps the focus, so that every scan lands in it whatever was touched before.
// The words, requests and the login are common.js's.
"use strict";

const SEND_CHARS = 200;           // longer input is refused by the server anyway: never send more
const HISTORY_SHOWN = 6;

let last = null;                  // the last answer shown, to redraw it in the other language
let asked = 0;                    // scans sent; only the newest answer is shown
const history = [];

// ---- focus: every keystroke of the scanner must reach #waybill ---------------------------------
function loginOpen() { return !$("login-dialog").hidden; }
function keepFocus() {
  if (!loginOpen() && document.activeElement !== $("waybill")) $("waybill").focus();
}
function scannerKey(ev) {
  if (loginOpen() || ev.target === $("waybill") || ev.ctrlKey || ev.altKey || ev.metaKey) return;
  // Focus is on a button or the destination list: the scanner's characters go to the input.
  if (ev.key.length === 1 && /[0-9A-Za-z]/.test(ev.key)) {
    ev.preventDefault();
    $("waybill").value += ev.key;
    $("waybill").focus();
  } else if (ev.key === "Enter" && $("waybill").value) {
    ev.preventDefault();
    $("waybill").focus();
    scan();
  }
}

// ---- scanning ------------------------------------------------------------------------------------
async function scan(ev) {
  if (ev) ev.preventDefault();
  const text = $("waybill").value.trim();
  $("waybill").value = "";
  keepFocus();
  if (!text) return;
  const mine = ++asked;
  let answer;
  try {
    const r = await post("/api/coding/scan", { waybill: text.slice(0, SEND_CHARS + 1) });
    answer = r.ok ? await r.json() : { kind: "error", waybill: text, message: await errorText(r), status: r.status };
    if (r.status === 403) await loadSession();
  } catch (err) {
    answer = { kind: "error", waybill: text, message: String(err) };
  }
  if (mine !== asked) return;
  last = answer;
  if (answer.kind !== "error") {
    history.unshift(answer);
    history.length = Math.min(history.length, HISTORY_SHOWN);
  }
  render();
}

function render() {
  const a = last;
  const main = $("result");
  main.dataset.kind = a ? a.kind : "waiting";
  if (!a) {
    $("scanned").textContent = t("coding_prompt");
    $("chute").textContent = "—";
    for (const id of ["destination", "reason", "check", "preadvice-note", "parcel-text"]) $(id).textContent = "";
    $("courier").textContent = "—";
    $("parcel").hidden = true;
    $("preadvice-tools").hidden = true;
    renderHistory();
    return;
  }
  $("scanned").textContent = a.waybill.length > 48 ? a.waybill.slice(0, 48) + "…" : a.waybill;
  if (a.plan_version) $("plan-version").textContent = a.plan_version;
  $("chute").textContent = a.chute === null || a.chute === undefined ? "?" : String(a.chute);
  $("destination").textContent = a.destination || "";
  $("courier").textContent = a.courier || "—";
  $("reason").textContent = a.reason ? reasonLabel(a.reason) : "";
  let check = "";
  if (a.kind === "error") check = a.status === 429 ? t("coding_too_fast") : a.message;
  else if (a.kind === "no_courier") { check = t("coding_no_courier_check"); $("reason").textContent = t("coding_no_courier"); }
  else if (a.kind === "no_rule") check = t("coding_no_rule_check", { chute: a.chute });
  $("check").textContent = check;
  renderPreadvice(a);
  renderParcel(a);
  renderHistory();
}

function renderPreadvice(a) {
  const may = a.kind === "coded" || a.kind === "no_rule";
  const tools = $("preadvice-tools");
  tools.hidden = !(may && session.who);
  $("preadvice-note").textContent = may && !session.who && !a.preadvice ? t("coding_login_to_add") : "";
  if (tools.hidden) return;
  const select = $("preadvice-destination");
  select.replaceChildren(...a.destinations.map((name) => el("option", null, name)));
  select.value = a.destination || a.destinations[0];
}

function renderParcel(a) {
  const p = a.parcel;
  $("parcel").hidden = a.kind === "error";
  const img = $("parcel-image");
  if (!p) {
    img.hidden = true;
    img.removeAttribute("src");
    $("parcel-text").textContent = t("coding_not_found");
    return;
  }
  const time = new Date(p.scanned_wall * 1000).toLocaleTimeString(lang === "zh" ? "zh-CN" : "en-GB", { hour12: false });
  $("parcel-text").textContent = t("coding_parcel", { tracking: p.tracking, time, chute: p.chute }) +
    " · " + reasonLabel(p.reason) + (p.waybills.length ? " · " + p.waybills.join(", ") : "");
  if (p.image) {
    if (img.getAttribute("src") !== p.image) img.src = p.image;
    img.hidden = false;
  } else {
    img.hidden = true;
    img.removeAttribute("src");
  }
}

function renderHistory() {
  $("history").replaceChildren(...history.map((a) => {
    const li = el("li", a.kind, a.waybill + " → ");
    li.append(el("b", null, a.chute === null ? "?" : String(a.chute)));
    if (a.destination) li.append(" " + a.destination);
    return li;
  }));
}

async function addPreadvice() {
  const a = last;
  if (!a) return;
  const destination = $("preadvice-destination").value;
  const r = await post("/api/coding/preadvice", { waybill: a.waybill, destination });
  if (r.ok) {
    const body = await r.json();
    $("preadvice-note").textContent = body.added ? t("coding_added", { file: body.file }) : t("coding_already");
    if (body.added) a.preadvice = destination;
  } else {
    $("preadvice-note").textContent = await errorText(r);
    if (r.status === 403) await loadSession();
  }
  keepFocus();
}

// ---- the page's part in language and login -----------------------------------------------------
thisPage.translate = () => { $("waybill").placeholder = t("coding_prompt"); };
// Adding to the pre-advice is for a technician: the tools under the answer follow the login.
thisPage.showSession = () => { if (last) renderPreadvice(last); };
thisPage.sessionChanged = keepFocus;
thisPage.loginClosed = keepFocus;
thisPage.render = render;

async function start() {
  await startCommon();
  $("scan-form").addEventListener("submit", scan);
  document.addEventListener("keydown", scannerKey, true);
  // Whatever was touched, the focus comes back to the input (the login form excepted).
  document.addEventListener("focusout", () => setTimeout(() => {
    const at = document.activeElement;
    if (at && at.id === "preadvice-destination") return;
    keepFocus();
  }, 0));
  document.addEventListener("pointerup", (ev) => {
    if (!ev.target.closest("select, #login-dialog")) setTimeout(keepFocus, 0);
  });
  $("preadvice-destination").addEventListener("change", () => setTimeout(keepFocus, 0));
  $("preadvice-add").addEventListener("click", addPreadvice);
  render();
  keepFocus();
  await loadSession();
  try {
    const view = await (await fetch("/api/view")).json();
    if (!last) $("plan-version").textContent = view.plan_version;
  } catch (err) { /* the version comes with the first answer */ }
  document.body.dataset.ready = "1";
}

start();
