// Drives the manual coding table in Debian's headless chromium (playwright-core), typing each
// waybill as a USB handheld scanner does: its characters one by one into whatever has the focus,
// then Enter.
//
//   node drive_coding.mjs URL TOKEN SCANS_JSON SHOT_DIR OUT_JSON
//
// SCANS_JSON: [{"name": ..., "waybill": ...}, ...]. For each scan, OUT_JSON gets what the page
// shows (chute digits, destination, courier, the check text, the image), and the page's layout at
// 800x1280 and 1280x800 (every part inside the screen, nothing scrolled off).
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const CHROMIUM = process.env.SORTLINE_CHROMIUM || "/usr/bin/chromium";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const STEP_MS = 30000;
const PARTS = ["#top", "#waybill", "#chute", "#destination", "#courier-line", "#reason", "#check", "#parcel-image",
  "#parcel-text", "#preadvice-tools", "footer"];

const [url, token, scansFile, shotDir, outFile] = process.argv.slice(2);
const scans = JSON.parse(fs.readFileSync(scansFile, "utf-8"));

async function shown(page) {
  return page.evaluate(() => {
    const text = (id) => document.getElementById(id).textContent.trim();
    const img = document.getElementById("parcel-image");
    return {
      kind: document.getElementById("result").dataset.kind, chute: text("chute"), destination: text("destination"),
      courier: text("courier"), reason: text("reason"), check: text("check"), scanned: text("scanned"),
      parcel_text: text("parcel-text"), note: text("preadvice-note"),
      image_shown: !img.hidden && img.complete && img.naturalWidth > 0,
      chute_px: parseFloat(getComputedStyle(document.getElementById("chute")).fontSize),
      focused: document.activeElement && document.activeElement.id,
      lang: document.documentElement.lang,
    };
  });
}

async function layout(page, parts) {
  return page.evaluate((sel) => {
    const out = { width: innerWidth, height: innerHeight, scroll_width: document.documentElement.scrollWidth,
                  scroll_height: document.documentElement.scrollHeight, cut: [] };
    for (const s of sel) {
      const e = document.querySelector(s);
      if (!e || e.offsetParent === null) continue;        // hidden parts cannot be cut off
      const r = e.getBoundingClientRect();
      if (r.left < -1 || r.top < -1 || r.right > innerWidth + 1 || r.bottom > innerHeight + 1) {
        out.cut.push({ part: s, left: r.left, top: r.top, right: r.right, bottom: r.bottom });
      }
      // A part whose content overflows a box that clips it is cut off too.
      if (e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== "visible") {
        out.cut.push({ part: s, overflow_x: e.scrollWidth - e.clientWidth });
      }
    }
    return out;
  }, parts);
}

async function scanLikeAScanner(page, waybill) {
  // A scanner types fast, a few ms a character, into whatever has the focus.
  await page.keyboard.type(waybill, { delay: 8 });
  await page.keyboard.press("Enter");
  await page.waitForFunction((w) => document.getElementById("scanned").textContent.trim().startsWith(w.slice(0, 48)),
    waybill);
}

const profile = fs.mkdtempSync(path.join(os.tmpdir(), "sortline-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1280, height: 800 }, timeout: STEP_MS,
});
const problems = [];
const out = { scans: {}, layouts: {} };
const page = context.pages()[0] || await context.newPage();
try {
  page.setDefaultTimeout(STEP_MS);
  page.on("pageerror", (err) => problems.push(String(err)));
  page.on("console", (msg) => { if (msg.type() === "error") problems.push(`${msg.text()} @ ${msg.location().url}`); });
  await page.goto(url + "coding");
  await page.waitForFunction(() => document.body.dataset.ready === "1");
  out.focused_at_start = await page.evaluate(() => document.activeElement && document.activeElement.id);
  for (const s of scans) {
    if (s.tap_first) await page.click("#lang").then(() => page.click("#lang"));   // a touch elsewhere first
    if (s.login) {
      await page.click("#login-open");
      await page.fill("#login-name", "王五");
      await page.fill("#login-token", token);
      await page.click("#login-submit");
      await page.waitForFunction(() => !document.getElementById("who").hidden);
    }
    await scanLikeAScanner(page, s.waybill);
    if (s.wait_image) await page.waitForFunction(() => {
      const img = document.getElementById("parcel-image");
      return !img.hidden && img.complete && img.naturalWidth > 0;
    });
    out.scans[s.name] = await shown(page);
    if (s.add_preadvice) {
      await page.click("#preadvice-add");
      await page.waitForFunction(() => document.getElementById("preadvice-note").textContent.trim() !== "");
      out.scans[s.name].after_add = await shown(page);
    }
    if (s.shot) await page.screenshot({ path: path.join(shotDir, s.shot) });
  }
  // Both screen shapes with the last answer on it (the image scan, when it comes last).
  for (const [name, size] of [["landscape", { width: 1280, height: 800 }], ["portrait", { width: 800, height: 1280 }]]) {
    await page.setViewportSize(size);
    await page.waitForTimeout(200);
    out.layouts[name] = await layout(page, PARTS);
    out.layouts[name].chute_px = parseFloat(await page.evaluate(() =>
      getComputedStyle(document.getElementById("chute")).fontSize));
    await page.screenshot({ path: path.join(shotDir, `coding-${name}.png`) });
  }
  await page.click("#lang");
  out.english = await shown(page);
  await page.screenshot({ path: path.join(shotDir, "coding-portrait-en.png") });
} catch (err) {
  await page.screenshot({ path: path.join(shotDir, "coding-failed.png") }).catch(() => {});
  const text = await page.evaluate(() => document.body.innerText).catch(() => "");
  console.error(`${err.stack}\npage errors: ${problems.join(" | ")}\npage text:\n${text.slice(0, 1500)}`);
  process.exitCode = 1;
} finally {
  out.page_errors = problems;
  fs.writeFileSync(outFile, JSON.stringify(out, null, 1));
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
