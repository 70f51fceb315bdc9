// Drives the operator dashboard in headless Chromium against the fake server (test/fake-operator-
// server.mjs) and saves screenshots under test-results/operator/: the grid and a call page at
// 1280x800 and 1920x1080. Checks the DOM hooks along the way (degraded cell and row, charts that
// update, events, stream reconnect after a drop and after silence, the key leaving the URL, the
// end-call dialog) and fails on any page error or console error (CSP violations included).
//
//   npm run build && node test/operator-screens.mjs [--dist dist] [--tz Area/City] [--url http://host:port --key KEY --call ID]
//
// With --url the script runs against a real server instead (only the read-only checks).
/* global document, fetch */
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import { startFakeServer } from "./fake-operator-server.mjs";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const outDir = resolve(arg("--out", "test-results/operator"));
await mkdir(outDir, { recursive: true });

const realUrl = arg("--url", null);
const callId = arg("--call", "c1");
let fake = null;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  timeout: 30_000,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const problems = [];
const step = (text) => console.log(`- ${text}`);
try {
  for (const viewport of [{ width: 1280, height: 800 }, { width: 1920, height: 1080 }]) {
    const tag = `${viewport.width}x${viewport.height}`;
    // A fresh scenario for each window size (the first run ends a call and recovers one).
    await fake?.close();
    fake = realUrl === null ? await startFakeServer({ dist: arg("--dist", "dist") }) : null;
    const base = realUrl ?? fake.url;
    const key = realUrl === null ? fake.key : arg("--key", "");
    const timezoneId = arg("--tz", undefined);
    const context = await browser.newContext({ viewport, ...(timezoneId ? { timezoneId } : {}) });
    const page = await context.newPage();
    page.on("pageerror", (e) => problems.push(`${tag} page error: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`${tag} console error: ${m.text()}`);
    });
    page.setDefaultTimeout(15_000);

    await page.goto(`${base}/operator?key=${encodeURIComponent(key)}`);
    await page.waitForSelector("#stream-state[data-state=live]");
    assert.ok(!page.url().includes("key="), `key left in the URL: ${page.url()}`);
    step(`${tag}: stream live, key removed from the URL (${page.url()})`);

    await page.waitForSelector(`#calls-grid .call-cell[data-call="${callId}"]`);
    if (fake !== null) {
      await page.waitForSelector('#calls-grid .call-cell[data-call="c1"][data-health="degraded"]');
      await page.waitForSelector('#calls-grid .call-cell[data-call="c2"][data-health="good"]');
      await page.waitForSelector('#calls-grid .call-cell[data-call="c4"][data-health="idle"]');
      await page.waitForSelector('#calls-grid .call-cell[data-call="e1"][data-health="ended"]');
      const note = await page.textContent('.call-cell[data-call="c1"] .cell-note');
      assert.match(note, /^interpreter's uplink: loss \d+(\.\d)?%$/);
      step(`${tag}: grid cells coloured (c1 degraded: "${note}", c2 good, c4 idle, e1 ended)`);
    }
    // No two cells overlap.
    const overlaps = await page.evaluate(() => {
      const rects = [...document.querySelectorAll(".call-cell")].map((el) => [el.dataset.call, el.getBoundingClientRect()]);
      const out = [];
      for (let i = 0; i < rects.length; i++)
        for (let j = i + 1; j < rects.length; j++) {
          const [a, r] = rects[i];
          const [b, q] = rects[j];
          if (r.left < q.right - 1 && q.left < r.right - 1 && r.top < q.bottom - 1 && q.top < r.bottom - 1) out.push(`${a}/${b}`);
        }
      return out;
    });
    assert.deepEqual(overlaps, []);
    await page.screenshot({ path: join(outDir, `grid-${tag}.png`) });
    step(`${tag}: grid screenshot saved`);

    await page.click(`.call-cell[data-call="${callId}"]`);
    await page.waitForSelector(`#call-page[data-call="${callId}"]:not([hidden])`);
    await page.waitForSelector("#chart-bitrate .uplot");
    const rows = await page.$$eval(".participant-row", (els) => els.map((e) => [e.dataset.participant, e.dataset.status]));
    step(`${tag}: participant rows ${JSON.stringify(rows)}`);
    if (fake !== null) {
      assert.equal(rows.length, 4);
      await page.waitForSelector('.participant-row[data-participant="interpreter"][data-status="degraded"] .p-uplink[data-degraded="true"] .uplink-score');
      const scores = await page.$eval('.participant-row[data-participant="interpreter"]', (r) => [r.querySelector(".score").textContent, r.querySelector(".uplink-score").textContent, r.querySelector(".downlink-score").textContent]);
      step(`${tag}: interpreter scores overall/up/down ${scores.join(" / ")}`);
      await page.waitForSelector('#events li[data-kind="degraded"]');
    }
    const points = async () =>
      page.$$eval(".chart", (els) => Object.fromEntries(els.map((e) => [e.id, [Number(e.dataset.points), Number(e.dataset.last), Number(e.dataset.redraws), Number(e.dataset.series)]])));
    const before = await points();
    await page.waitForTimeout(2500);
    const after = await points();
    for (const id of ["chart-bitrate", "chart-loss", "chart-jitter", "chart-rtt"]) {
      assert.ok(after[id][0] > 0, `${id} has no points`);
      assert.ok(after[id][1] > before[id][1], `${id} did not move: ${before[id]} → ${after[id]}`);
      assert.ok(after[id][2] > before[id][2], `${id} was not redrawn`);
    }
    step(`${tag}: charts update from the stream ${JSON.stringify(after)}`);
    const events = await page.$$eval("#events li", (els) => els.map((e) => `${e.dataset.kind}: ${e.textContent}`));
    step(`${tag}: events (newest first) ${JSON.stringify(events.slice(0, 3))}`);
    await page.screenshot({ path: join(outDir, `call-${tag}.png`) });
    step(`${tag}: call screenshot saved`);

    if (fake !== null && viewport.width === 1280) {
      // Stream drop → reconnecting → live again, charts keep their history (backlog merged).
      await fetch(`${base}/fake/drop`, { method: "POST" });
      await page.waitForSelector("#stream-state[data-state=reconnecting]", { timeout: 3000 });
      await page.screenshot({ path: join(outDir, `reconnecting-${tag}.png`), clip: { x: 0, y: 0, width: viewport.width, height: 60 } });
      await page.waitForSelector("#stream-state[data-state=live]", { timeout: 8000 });
      step(`${tag}: stream dropped → reconnecting → live`);
      // Silence without a close: the watchdog notices.
      await fetch(`${base}/fake/silence?ms=7000`, { method: "POST" });
      await page.waitForSelector("#stream-state[data-state=reconnecting]", { timeout: 9000 });
      await page.waitForSelector("#stream-state[data-state=live]", { timeout: 12000 });
      step(`${tag}: stream went silent → reconnecting → live`);
      // Recovery event.
      await fetch(`${base}/fake/recover`, { method: "POST" });
      await page.waitForSelector('.participant-row[data-participant="interpreter"][data-status="good"]');
      await page.waitForSelector('#events li[data-kind="recovered"]:first-child');
      step(`${tag}: recovery shows (row good, newest event "recovered")`);
      // End call: dialog, cancel keeps it; confirm ends it.
      await page.click("#end-call");
      await page.waitForSelector("#confirm-end[open]");
      await page.screenshot({ path: join(outDir, `confirm-${tag}.png`) });
      await page.click("#confirm-end-cancel");
      await page.waitForSelector("#confirm-end", { state: "hidden" });
      assert.equal(await page.isEnabled("#end-call"), true);
      await page.goto(`${base}/operator#/call/c2`);
      await page.waitForSelector('#call-page[data-call="c2"] .participant-row');
      const href = await page.getAttribute("#export-csv", "href");
      assert.match(href, /\/v1\/calls\/c2\/export\.csv\?api_key=/);
      await page.click("#end-call");
      await page.click("#confirm-end-yes");
      await page.waitForSelector("#notice:not([hidden])");
      await page.waitForSelector("#history:not([hidden]) .party-row");
      await page.waitForSelector('#call-state[data-health="ended"]');
      await page.screenshot({ path: join(outDir, `ended-${tag}.png`) });
      step(`${tag}: end call (confirmed) → notice, history summary, state ended; export link ${href.replace(/api_key=.*/, "api_key=…")}`);
      await page.click("#back-link");
      await page.waitForSelector('#calls-grid .call-cell[data-call="c2"][data-health="ended"]');
      step(`${tag}: back on the grid, c2 now ended`);
      // A wrong key is refused with the key prompt.
      const other = await context.newPage();
      await other.goto(`${base}/operator?key=wrong`);
      await other.waitForSelector("#key-prompt:not([hidden])");
      step(`${tag}: wrong key → key prompt: "${await other.textContent("#key-prompt-message")}"`);
      await other.close();
    }
    await context.close();
  }
} finally {
  await browser.close();
  await fake?.close();
}
if (problems.length > 0) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log(`screenshots in ${outDir}`);
