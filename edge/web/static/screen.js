// The line screen: renders the controller's view pushed once a second (server-sent events),
// in Chinese or English, and sends the technician's actions with the session's CSRF token.
// The words, requests and the login are common.js's.
"use strict";

const STALE_AFTER_MS = 5000;
const RECENT_SHOWN = 8;

let view = null;                  // the last view from the controller
let lastUpdate = 0;
let pending = null;               // the action waiting for confirmation
let source = null;                // the live feed (EventSource)

function reasonRemedy(r) { const p = pairOf("reasons", r); return p && p[1] ? p[1][idx()] : ""; }
function pct(x) { return x === null || x === undefined ? "—" : (100 * x).toFixed(1) + "%"; }

// ---- rendering -------------------------------------------------------------------------------
function render() {
  if (!view || !words) return;
  const v = view;
  $("line-name").textContent = v.line;
  const st = pairOf("states", v.state);
  const state = $("state");
  state.textContent = st ? st[idx()] : v.state;
  state.dataset.state = v.level;
  $("plan-version").textContent = v.plan_version;
  $("clock").textContent = clock(v.now_wall);
  renderAlarms(v.alarms);
  renderFaults(v);
  $("per-minute").textContent = v.per_minute === null ? "—" : Math.round(v.per_minute);
  $("per-hour").textContent = v.per_minute === null ? "" : Math.round(v.per_minute * 60) + " " + t("per_hour");
  $("read-rate").textContent = pct(v.read_rate);
  $("sort-rate").textContent = pct(v.sort_rate);
  $("slack").textContent = v.slack_ms ? Math.round(v.slack_ms.min) + " ms" : "—";
  $("slack").classList.toggle("warn", !!v.slack_ms && v.slack_ms.min < 0.1 * v.budget_ms);
  $("slack-sub").textContent = v.slack_ms
    ? `${t("slack_min")} · ${t("slack_median")} ${Math.round(v.slack_ms.median)} ms · ${t("budget")} ${Math.round(v.budget_ms)} ms`
    : `${t("budget")} ${Math.round(v.budget_ms)} ms`;
  $("count-scans").textContent = v.scans;
  $("count-decided").textContent = v.decided;
  $("count-sent").textContent = v.sent;
  $("count-past-deadline").textContent = v.past_deadline;
  $("count-past-deadline").classList.toggle("warn", v.past_deadline > 0);
  renderChutes(v.chutes);
  renderRejects(v.rejects);
  renderActions(v.actions);
  renderRecent(v.recent);
}

function clock(wall) {
  return new Date(wall * 1000).toLocaleTimeString(lang === "zh" ? "zh-CN" : "en-GB");
}

// The controller's alarms, oldest first: a title in the reader's language (the key itself for a key
// this page does not know yet), then the controller's own cause and remedy, since when and how often.
function renderAlarms(alarms) {
  const box = $("alarms");
  box.replaceChildren();
  for (const a of alarms || []) {
    const li = el("li", "alarm");
    li.dataset.key = a.key;
    const title = pairOf("alarms", a.key);
    const head = el("div", "head");
    head.append(el("span", "title", title ? title[idx()] : a.key),
                el("span", "when", t("alarm_since", { time: clock(a.since_wall) }) + " · " + (a.count === 1 ? t("alarm_once") : t("alarm_count", { n: a.count }))));
    li.append(head, el("div", "cause", a.cause));
    if (a.remedy) li.append(el("div", "remedy", a.remedy));
    box.append(li);
  }
}

function banner(cls, title, detail, remedy) {
  const b = el("div", "banner " + cls);
  b.append(el("div", "title", title));
  if (remedy) b.append(el("div", "remedy", remedy));
  if (detail) b.append(el("div", "detail", detail));
  return b;
}

function renderFaults(v) {
  const box = $("faults");
  box.replaceChildren();
  if (v.state !== "running") {
    const st = pairOf("states", v.state);
    const remedy = v.remedy && words.remedies[v.remedy] ? words.remedies[v.remedy][idx()] : "";
    box.append(banner(v.level, st ? st[idx()] : v.state, v.message || "", remedy.replaceAll("{address}", v.address)));
  }
  if (v.plan_refused) box.append(banner("warn", t("plan_refused") + ": " + v.plan_version, v.plan_refused, ""));
}

function roleText(roles) {
  return roles.map((r) => (r.startsWith("@") ? specialRole(r.slice(1)) : r))
    .filter((r, i, all) => all.indexOf(r) === i).join(" · ");
}
function specialRole(role) {
  const names = { no_read: "NO_READ", multi_read: "MULTI_READ", no_rule: "NO_RULE", overflow: "OVERFLOW",
                  reject: "REJECT", unavailable: "CHUTE_UNAVAILABLE" };
  return reasonLabel(names[role] || role);
}

function chuteState(c) {
  return c.faulted ? "faulted" : c.disabled ? "disabled" : c.full ? "full" : "ok";
}

function renderChutes(chutes) {
  const box = $("chutes");
  const sides = chutes.filter((c) => c.side !== "end");
  // One column per diverter position pair: left chutes above the belt, right chutes below.
  const columns = [];
  for (const c of sides) {
    const last = columns[columns.length - 1];
    if (last && !last[c.side]) last[c.side] = c; else columns.push({ [c.side]: c });
  }
  const ends = chutes.filter((c) => c.side === "end");
  box.style.gridTemplateColumns = `repeat(${columns.length}, 1fr) 1.3fr`;
  box.replaceChildren();
  columns.forEach((col, i) => {
    for (const side of ["left", "right"]) {
      const c = col[side];
      const tile = c ? chuteTile(c) : el("div", "chute empty");
      tile.style.gridColumn = String(i + 1);
      tile.style.gridRow = side === "left" ? "1" : "3";
      box.append(tile);
    }
  });
  const belt = el("div", "belt", t("belt"));
  belt.style.gridColumn = `1 / ${columns.length + 1}`;
  belt.style.gridRow = "2";
  box.append(belt);
  for (const c of ends) {
    const tile = chuteTile(c);
    tile.classList.add("end");
    tile.style.gridColumn = String(columns.length + 1);
    tile.style.gridRow = "1 / 4";
    box.append(tile);
  }
}

function chuteTile(c) {
  const state = chuteState(c);
  const tile = el("button", "chute " + state);
  tile.type = "button";
  tile.dataset.chute = c.number;
  tile.dataset.state = state;
  tile.append(el("div", "num", c.number));
  tile.append(el("div", "count", c.landed));
  tile.append(el("div", "role", state === "ok" ? roleText(c.roles || []) : t(state)));
  tile.title = roleText(c.roles || []);
  tile.addEventListener("click", () => askChute(c));
  return tile;
}

function renderRejects(rejects) {
  const box = $("rejects");
  box.replaceChildren();
  const entries = Object.entries(rejects || {});
  if (!entries.length) { box.append(el("li", "none", t("no_rejects"))); return; }
  const most = Math.max(...entries.map(([, n]) => n));
  for (const [reason, n] of entries) {
    const li = el("li");
    li.dataset.reason = reason;
    const head = el("div", "head");
    head.append(el("span", "name", reasonLabel(reason)), el("span", "n", n));
    const bar = el("div", "bar");
    bar.style.width = (100 * n / most).toFixed(1) + "%";
    li.append(head, bar);
    const remedy = reasonRemedy(reason);
    if (remedy) li.append(el("div", "remedy", remedy));
    box.append(li);
  }
}

function renderActions(actions) {
  const box = $("actions");
  box.replaceChildren();
  if (view.parcels_hidden) { box.append(el("li", "hidden-note", t("login_for_parcels"))); return; }
  for (const a of actions || []) {
    const when = clock(a.at_wall);
    const what = words.text["act:" + a.action] ? t("act:" + a.action) : a.action;
    box.append(el("li", null, `${when}  ${a.who}  ${what}${a.detail ? " " + a.detail : ""}`));
  }
}

function renderRecent(recent) {
  const box = $("recent");
  const rows = (recent || []).slice(0, RECENT_SHOWN);
  box.replaceChildren();
  // Beyond this PC, parcel data needs a login: the server leaves it out of the view until then.
  if (view.parcels_hidden) { box.append(el("div", "hidden-note", t("login_for_parcels"))); return; }
  for (const p of rows) {
    const row = el("div", "parcel");
    row.dataset.tracking = p.tracking;
    if (p.image) {
      const img = el("img", "thumb");
      img.alt = "";
      img.src = "/api/thumb/" + p.tracking;
      row.append(img);
    } else {
      row.append(el("div", "thumb none", t("no_image")));
    }
    const info = el("div", "info");
    const read = p.waybills.length ? p.waybills.join(" / ") : t("nothing_read");
    info.append(el("div", "waybill", read));
    const bits = [];
    if (p.routing_code) bits.push(`${t("routing_code")} ${p.routing_code}`);
    if (p.destination) bits.push(`${t("destination")} ${p.destination}`);
    const sources = Object.entries(p.sources || {}).map(([k, s]) => `${t(k)}: ${s}`).join(" ");
    if (sources) bits.push(`${t("read_by")} ${sources}`);
    if (p.no_read_reason) bits.push(p.no_read_reason);
    info.append(el("div", "detail", bits.join(" · ")));
    info.append(el("div", "detail", `#${p.tracking} · ${t("latency")} ${p.total_ms} ms · ${t("slack")} ${p.slack_ms} ms`));
    const dest = el("div", "dest " + (p.reason in { PREADVICE: 1, ROUTING_CODE: 1, COURIER_RULE: 1, COURIER_OVERRIDE: 1 } ? "ok" : "bad"));
    dest.append(el("div", "chute-no", "→ " + p.chute), el("div", "why", reasonLabel(p.reason)));
    row.append(info, dest);
    box.append(row);
  }
  // Only whole rows: a parcel cut in half by the screen's edge helps nobody.
  const bottom = $("recent-panel").getBoundingClientRect().bottom - 8;
  for (const row of [...box.children].reverse()) {
    if (row.getBoundingClientRect().bottom > bottom) row.remove();
  }
}

// ---- live feed -------------------------------------------------------------------------------
function connect() {
  // Opened again after a login or logout: the server chooses what the feed carries by the session.
  if (source) source.close();
  source = new EventSource("/api/live");
  source.onmessage = (e) => {
    view = JSON.parse(e.data);
    if (!view.line) return;           // the feed's first tick is not computed yet
    lastUpdate = Date.now();
    $("stale").hidden = true;
    render();
  };
  // EventSource reconnects on its own (retry: 2000 from the server); the banner says so meanwhile.
}
setInterval(() => { if (Date.now() - lastUpdate > STALE_AFTER_MS) $("stale").hidden = false; }, 1000);

// ---- technician actions ----------------------------------------------------------------------
function toast(text, bad) {
  const box = $("toast");
  box.textContent = text;
  box.className = bad ? "bad" : "ok";
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 6000);
}

// What only a technician may do: disable a chute from its tile, reload the plan.
thisPage.showSession = () => {
  const inside = !!session.who;
  $("reload-plan").hidden = !inside;
  document.body.classList.toggle("technician", inside);
};
// The feed carries parcel data for a technician only: opened again after a login or logout.
thisPage.sessionChanged = connect;
thisPage.render = render;

function askChute(c) {
  if (!session.who) { toast(t("click_chute")); return; }
  const enable = c.disabled;
  $("confirm-text").textContent = t(enable ? "confirm_enable" : "confirm_disable", { chute: c.number });
  pending = async () => {
    const r = await post(`/api/chutes/${c.number}`, { enabled: enable });
    if (r.ok) toast(`${t(enable ? "enable_chute" : "disable_chute")} ${c.number}: ${t("done")}`);
    else { toast(await errorText(r), true); if (r.status === 403) await loadSession(); }
  };
  $("confirm-dialog").hidden = false;
}

async function reloadPlan() {
  $("confirm-text").textContent = t("reload_plan") + "?";
  pending = async () => {
    const r = await post("/api/plan/reload", {});
    if (r.ok) toast(t("plan_loaded", { version: (await r.json()).version }));
    else toast(await errorText(r), true);
  };
  $("confirm-dialog").hidden = false;
}

async function start() {
  await startCommon();
  $("reload-plan").addEventListener("click", reloadPlan);
  $("confirm-yes").addEventListener("click", async () => {
    $("confirm-dialog").hidden = true;
    const action = pending; pending = null;
    if (action) await action();
  });
  $("confirm-no").addEventListener("click", () => { $("confirm-dialog").hidden = true; pending = null; });
  await loadSession();
  connect();
}

start();
