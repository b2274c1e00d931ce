// Drives the line screen in Debian's headless chromium (playwright-core, no downloaded browser).
//
//   node drive_screen.mjs act   URL TOKEN CHUTE SCREENSHOT OUT_JSON   (during a shift)
//   node drive_screen.mjs check URL SCREENSHOT OUT_JSON               (after the shift)
//
// "act": wrong token refused, login, disable CHUTE from its tile, screenshot of the live page.
// "check": what the page shows (counts, chutes, rejects), in Chinese then English.
// Prints nothing on success; OUT_JSON holds what the page showed, for pytest to compare.
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const CHROMIUM = process.env.SORTLINE_CHROMIUM || "/usr/bin/chromium";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const STEP_MS = 30000;

async function withPage(fn, failShot) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "sortline-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1920, height: 1080 },
    timeout: STEP_MS,
  });
  try {
    const page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    const problems = [];
    page.on("pageerror", (err) => problems.push(String(err)));
    page.on("console", (msg) => { if (msg.type() === "error") problems.push(`${msg.text()} @ ${msg.location().url}`); });
    let result;
    try {
      result = await fn(page);
    } catch (err) {
      // What the page showed when a step failed: a picture and its text, for the test's message.
      await page.screenshot({ path: failShot }).catch(() => {});
      const text = await page.evaluate(() => document.body.innerText).catch(() => "");
      throw new Error(`${err.message}\npage errors: ${problems.join(" | ")}\npage text:\n${text.slice(0, 1500)}`);
    }
    result.page_errors = problems;
    return result;
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

const step = (what) => console.error(`${new Date().toISOString()} ${what}`);
const number = async (page, sel) => Number((await page.locator(sel).textContent()).trim());

async function act(url, token, chute, shot) {
  return withPage(async (page) => {
    step("open page");
    await page.goto(url);
    // Live: the count grows while the page stays loaded.
    await page.waitForFunction(() => Number(document.getElementById("count-decided").textContent) > 0);
    const first = await number(page, "#count-decided");
    await page.waitForFunction((n) => Number(document.getElementById("count-decided").textContent) > n, first);
    const later = await number(page, "#count-decided");

    step("wrong token");
    await page.click("#login-open");
    await page.fill("#login-name", "王工");
    await page.fill("#login-token", "not-the-token-0000000000");
    const [bad] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith("/api/login")),
      page.click("#login-submit"),
    ]);
    await page.locator("#login-error").waitFor({ state: "visible" });
    const badText = await page.locator("#login-error").textContent();
    const actionsAfterBad = await page.locator("#reload-plan").isVisible();

    step("right token");
    await page.fill("#login-token", token);
    const [good] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith("/api/login")),
      page.click("#login-submit"),
    ]);
    await page.locator("#who").waitFor({ state: "visible" });
    const who = await page.locator("#who").textContent();

    step("disable chute");
    await page.click(`[data-chute="${chute}"]`);
    await page.locator("#confirm-dialog").waitFor({ state: "visible" });
    const confirmText = await page.locator("#confirm-text").textContent();
    const [disable] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith(`/api/chutes/${chute}`)),
      page.click("#confirm-yes"),
    ]);
    step("wait for disabled tile and thumbnails");
    const disabledAt = Date.now() / 1000;
    await page.locator(`[data-chute="${chute}"][data-state="disabled"]`).waitFor();
    // A couple more parcels, with their label thumbnails, before the picture is taken.
    const n = await number(page, "#count-decided");
    await page.waitForFunction((k) => Number(document.getElementById("count-decided").textContent) >= k + 3, n);
    await page.waitForFunction(() => [...document.querySelectorAll("img.thumb")].some((i) => i.complete && i.naturalWidth > 0));
    const thumbs = await page.$$eval("img.thumb", (imgs) => imgs.map((i) => ({ w: i.naturalWidth, h: i.naturalHeight })));
    await page.waitForTimeout(300);
    await page.screenshot({ path: shot });
    step("screenshot taken");
    const toastText = await page.locator("#toast").textContent();
    return {
      decided_first: first, decided_later: later,
      bad_login_status: bad.status(), bad_login_text: badText, actions_visible_after_bad: actionsAfterBad,
      good_login_status: good.status(), who, confirm_text: confirmText,
      disable_status: disable.status(), toast: toastText, disabled_at_wall: disabledAt,
      thumbs, lang: await page.evaluate(() => document.documentElement.lang),
    };
  }, shot.replace(/\.png$/, "-failed.png"));
}

async function shown(page) {
  return page.evaluate(() => {
    const num = (id) => Number(document.getElementById(id).textContent);
    const chutes = {};
    for (const tile of document.querySelectorAll("#chutes [data-chute]")) {
      chutes[tile.dataset.chute] = { landed: Number(tile.querySelector(".count").textContent), state: tile.dataset.state };
    }
    const rejects = {};
    for (const li of document.querySelectorAll("#rejects li[data-reason]")) {
      rejects[li.dataset.reason] = { n: Number(li.querySelector(".n").textContent), label: li.querySelector(".name").textContent };
    }
    return {
      scans: num("count-scans"), decided: num("count-decided"), sent: num("count-sent"),
      past_deadline: num("count-past-deadline"), chutes, rejects,
      state: document.getElementById("state").textContent,
      banners: [...document.querySelectorAll("#faults .banner")].map((b) => b.innerText),
      alarms: [...document.querySelectorAll("#alarms .alarm")].map((a) => ({
        key: a.dataset.key, title: a.querySelector(".title").textContent, text: a.innerText,
        below_state: a.getBoundingClientRect().top >= document.getElementById("state").getBoundingClientRect().bottom,
      })),
      read_rate: document.getElementById("read-rate").textContent,
      title: document.querySelector('[data-t="read_rate"]').textContent,
    };
  });
}

async function check(url, shot) {
  return withPage(async (page) => {
    step("open page");
    await page.goto(url);
    await page.waitForFunction(() => Number(document.getElementById("count-decided").textContent) > 0);
    await page.waitForTimeout(1500);             // two pushes: the counts have settled
    const zh = await shown(page);
    await page.click("#lang");
    await page.waitForFunction(() => document.documentElement.lang === "en");
    const en = await shown(page);
    await page.screenshot({ path: shot });
    return { zh, en };
  }, shot.replace(/\.png$/, "-failed.png"));
}

const [mode, ...args] = process.argv.slice(2);
let result;
if (mode === "act") {
  const [url, token, chute, shot, out] = args;
  result = await act(url, token, chute, shot);
  fs.writeFileSync(out, JSON.stringify(result, null, 1));
} else if (mode === "check") {
  const [url, shot, out] = args;
  result = await check(url, shot);
  fs.writeFileSync(out, JSON.stringify(result, null, 1));
} else {
  console.error("usage: node drive_screen.mjs act URL TOKEN CHUTE SHOT OUT | check URL SHOT OUT");
  process.exit(2);
}
