// End-to-end test of the operator dashboard (issue 7, "What it must show" point 3): the real
// `dragoman serve` with an operator API key and a temporary SQLite history, a call booked for the
// current hour through `POST /v1/calls`, four `dragoman-bot` participants joining with the returned
// tokens (the interpreter drops 25 % of its outgoing packets on purpose), and headless Chromium on
// the server's own `/operator?key=…`:
//
//   1. the grid shows the call's cell, and the cell turns `degraded` within 15 s;
//   2. the call page lists the four participants: the interpreter degraded with its uplink marked,
//      the other three good;
//   3. the charts update from the live stream (`data-last` and `data-redraws` grow over ~3 s);
//   4. the timeline has the interpreter's `degraded` event;
//   5. screenshots `artifacts/e2e/operator-grid.png` and `artifacts/e2e/operator-call.png` (after a
//      layout check: nothing overlaps), the logs under `artifacts/e2e/operator/` and the numbers
//      behind each assertion in `artifacts/e2e/operator-measurements.json`.
//
// Bounded: every wait has a timeout, a watchdog tears everything down at 75 s, and the browser, the
// bots and the server are closed in `finally`. Only 127.0.0.1 addresses are used.
//
// Needs `cargo build --bin dragoman --bin dragoman-bot` first (or DRAGOMAN_BIN_DIR) and Debian's
// chromium at /usr/bin/chromium (or CHROMIUM). Run: `npm run e2e` in web/ (after the call test).
/* global fetch, AbortSignal, window, document */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";

import { waitInPage } from "./browser.mjs";
import { ARTIFACTS as artifacts, runScenario, sleep, waitUntil } from "./harness.mjs";

const WATCHDOG_MS = 75_000;
const INJECTED_LOSS = 0.25;

const PARTIES = [
  { name: "Kim Minji", role: "company", languages: ["ko"] },
  { name: "Lee Jiwoo", role: "interpreter", languages: ["ko", "en"] },
  { name: "Bangkok office", role: "office", languages: ["en"] },
  { name: "Somchai", role: "buyer", languages: ["en"] },
];
const DEGRADED = "interpreter";

/** RFC 3339 (UTC, whole seconds). */
const rfc3339 = (ms) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");

/**
 * Pairs of visible boxes among `selectors` that overlap by more than a pixel (an element and its own
 * ancestor or descendant do not count). Runs in the page.
 */
function overlapsInPage(selectors) {
  const els = [...document.querySelectorAll(selectors.join(","))].filter((el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  });
  const name = (el) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ""}${el.classList.length ? `.${[...el.classList].join(".")}` : ""}${el.dataset.participant ? `[${el.dataset.participant}]` : ""}${el.dataset.call ? `[${el.dataset.call}]` : ""}`;
  const out = [];
  for (let i = 0; i < els.length; i++) {
    for (let j = i + 1; j < els.length; j++) {
      const [a, b] = [els[i], els[j]];
      if (a.contains(b) || b.contains(a)) continue;
      const [r, q] = [a.getBoundingClientRect(), b.getBoundingClientRect()];
      if (r.left < q.right - 1 && q.left < r.right - 1 && r.top < q.bottom - 1 && q.top < r.bottom - 1) {
        out.push(`${name(a)} / ${name(b)}`);
      }
    }
  }
  return out;
}

test("operator dashboard: a live four-party call with a degraded interpreter uplink in headless Chromium", { timeout: WATCHDOG_MS + 15_000 }, (t) =>
  runScenario(t, {
    watchdogMs: WATCHDOG_MS,
    workPrefix: "dragoman-e2e-operator-",
    measurements: "operator-measurements.json",
    logDir: "operator",
    ownFiles: ["operator-grid.png", "operator-call.png"],
    beforeWrite: (s) => {
      s.measured.pageProblems = s.pageProblems;
    },
  }, async (s) => {
    const { measured, pageProblems, began } = s;
    const server = await s.startServer({ extraArgs: ["--history", join(s.work, "history.sqlite")] });
    const { http, operatorKey } = server;
    measured.serverReadyMs = Date.now() - began;
    await s.assertServesPage("/operator", "operator.js", "dashboard");

    // Book the call: this hour's slot (started five minutes ago), four parties.
    const slotStart = rfc3339(Date.now() - 5 * 60_000);
    const booking = await fetch(`http://${http}/v1/calls`, {
      method: "POST",
      headers: { authorization: `Bearer ${operatorKey}`, "content-type": "application/json" },
      body: JSON.stringify({ booth: "Booth 1", slot_start: slotStart, duration_minutes: 60, mode: "consecutive", parties: PARTIES }),
      signal: AbortSignal.timeout(5_000),
    });
    const booked = await booking.json();
    assert.equal(booking.status, 201, `POST /v1/calls answered ${booking.status}: ${JSON.stringify(booked)}`);
    const callId = booked.call.id;
    assert.ok(typeof callId === "string" && callId !== "", `a call id: ${JSON.stringify(booked.call)}`);
    assert.deepEqual(booked.join_links.map((l) => l.role), PARTIES.map((p) => p.role));
    const links = Object.fromEntries(booked.join_links.map((l) => [l.role, l]));
    const ids = Object.fromEntries(booked.join_links.map((l) => [l.role, l.identity]));
    assert.equal(ids[DEGRADED], DEGRADED, "the interpreter's identity defaults to its role");
    measured.booking = { callId, slotStart, identities: ids };
    t.diagnostic(`booked ${callId} at ${slotStart}: ${JSON.stringify(ids)}`);

    // Four bots, the interpreter dropping a quarter of its outgoing packets.
    const botsStarted = Date.now();
    for (const party of PARTIES) {
      s.startBot(`bot-${party.role}`, {
        token: links[party.role].token,
        publish: "audio,video",
        subscribe: "all",
        duration: "60s",
        report: join(s.logDir, `${party.role}.report.json`),
        extraArgs: party.role === DEGRADED ? ["--uplink-loss", String(INJECTED_LOSS), "--loss-seed", "7"] : [],
      });
    }
    const since = (at) => Date.now() - at;

    await s.launchBrowser();
    const page = await s.newPage({
      viewport: { width: 1280, height: 900 },
      onPageError: (message) => pageProblems.push(`page error: ${message}`),
      onConsoleError: (text) => pageProblems.push(`console error: ${text}`),
    });

    // --- The grid ---------------------------------------------------------------------------
    const opened = Date.now();
    await page.goto(`http://${http}/operator?key=${encodeURIComponent(operatorKey)}`, { timeout: 10_000 });
    await waitInPage(page, "the health stream live", 10_000, () => document.querySelector("#stream-state")?.dataset.state === "live");
    measured.streamLiveAfterOpenMs = since(opened);
    assert.ok(!page.url().includes("key="), `the key left the address bar: ${page.url()}`);

    const cell = `#calls-grid .call-cell[data-call="${callId}"]`;
    await waitInPage(page, `the call's cell ${cell}`, 10_000, (sel) => document.querySelector(sel) !== null, cell);
    measured.cellShownAfterOpenMs = since(opened);
    measured.cellHealthFirstSeen = await page.getAttribute(cell, "data-health");

    // Record every health the cell goes through, with times, to report when it turned degraded.
    await page.evaluate((sel) => {
      window.__e2eHealth = [];
      const track = () => {
        const el = document.querySelector(sel);
        const h = el?.dataset.health ?? null;
        if (window.__e2eHealth.at(-1)?.[1] !== h) window.__e2eHealth.push([Date.now(), h]);
      };
      track();
      new window.MutationObserver(track).observe(document.querySelector("#calls-grid"), {
        subtree: true,
        childList: true,
        attributes: true,
        attributeFilter: ["data-health"],
      });
    }, cell);
    await waitInPage(page, "the call's cell data-health=degraded (15 s)", 15_000, (sel) => document.querySelector(sel)?.dataset.health === "degraded", cell);
    const healthTrail = await page.evaluate(() => window.__e2eHealth);
    const degradedAt = healthTrail.find(([, h]) => h === "degraded")[0];
    measured.cellDegradedAfterBotsStartMs = degradedAt - botsStarted;
    measured.cellDegradedAfterOpenMs = degradedAt - opened;
    measured.cellHealthTrail = healthTrail.map(([at, h]) => `${h}@+${at - botsStarted}ms`);
    t.diagnostic(`grid: stream live ${measured.streamLiveAfterOpenMs} ms and cell shown ${measured.cellShownAfterOpenMs} ms after opening (first health "${measured.cellHealthFirstSeen}"); ` +
      `degraded ${measured.cellDegradedAfterBotsStartMs} ms after the bots started (${measured.cellDegradedAfterOpenMs} ms after opening); trail ${measured.cellHealthTrail.join(", ")}`);

    const cellText = await page.evaluate((sel) => {
      const el = document.querySelector(sel);
      return {
        time: el.querySelector(".cell-time")?.textContent ?? "",
        parties: el.querySelector(".cell-parties")?.textContent ?? "",
        note: el.querySelector(".cell-note")?.textContent ?? "",
      };
    }, cell);
    measured.cell = cellText;
    assert.match(cellText.note, /^interpreter's uplink\b/, `the degraded cell says whose direction: ${JSON.stringify(cellText)}`);
    const gridOverlaps = await page.evaluate(overlapsInPage, [".call-cell", "#calls-grid th", "header", "#stream-state"]);
    assert.deepEqual(gridOverlaps, [], "nothing overlaps on the grid");
    const inView = await page.evaluate((sel) => {
      const r = document.querySelector(sel).getBoundingClientRect();
      return r.width > 0 && r.height > 0 && r.left >= 0 && r.top >= 0 && r.right <= window.innerWidth + 1 && r.bottom <= window.innerHeight + 1;
    }, cell);
    assert.ok(inView, "the call's cell is inside the viewport");
    await page.screenshot({ path: join(artifacts, "operator-grid.png") });
    t.diagnostic(`grid cell: ${JSON.stringify(cellText)}`);

    // --- The call page ----------------------------------------------------------------------
    const clicked = Date.now();
    await page.click(cell);
    await waitInPage(page, "the call page", 5_000, (id) => {
      const el = document.querySelector("#call-page");
      return el !== null && el.dataset.call === id && !el.hidden;
    }, callId);
    assert.match(page.url(), new RegExp(`#/call/${callId}$`));

    // Four rows; the interpreter degraded with its uplink marked, the others good. Rows fill from
    // the next snapshot (one a second), and a bot that just connected may briefly read low: 10 s.
    const rowsOf = () => [...document.querySelectorAll(".participant-row")].map((r) => ({
      participant: r.dataset.participant,
      status: r.dataset.status,
      connected: r.dataset.connected,
      score: r.querySelector(".score")?.textContent ?? "",
      uplink: r.querySelector(".uplink-score")?.textContent ?? "",
      downlink: r.querySelector(".downlink-score")?.textContent ?? "",
      uplinkDegraded: r.querySelector(".p-uplink")?.dataset.degraded ?? null,
      downlinkDegraded: r.querySelector(".p-downlink")?.dataset.degraded ?? null,
      reason: r.querySelector(".reason")?.textContent ?? "",
    }));
    const participants = JSON.stringify(Object.values(ids).sort());
    const settled = (rows) =>
      rows.length === 4 &&
      JSON.stringify(rows.map((r) => r.participant).sort()) === participants &&
      rows.every((r) => (r.participant === DEGRADED ? r.status === "degraded" && r.uplinkDegraded === "true" : r.status === "good"));
    // The asserts below look at the rows this wait saw settle, not at a second read: every snapshot
    // redraws the rows, and one landing between the wait and a re-read could catch a bot reading low.
    let lastRows = [];
    try {
      await waitUntil("four rows: the interpreter degraded (uplink), the others good", 10_000, async () => {
        lastRows = await page.evaluate(rowsOf);
        return settled(lastRows);
      });
    } finally {
      measured.rows = lastRows;
    }
    measured.rowsSettledAfterClickMs = since(clicked);
    const rowBy = Object.fromEntries(lastRows.map((r) => [r.participant, r]));
    assert.equal(lastRows.length, 4);
    assert.equal(rowBy[DEGRADED].status, "degraded");
    assert.equal(rowBy[DEGRADED].uplinkDegraded, "true", "the interpreter's uplink is the degraded direction");
    for (const role of ["company", "office", "buyer"]) {
      assert.equal(rowBy[ids[role]].status, "good", `${role} stays good: ${JSON.stringify(rowBy[ids[role]])}`);
    }
    t.diagnostic(`rows (${measured.rowsSettledAfterClickMs} ms after the click): ${lastRows.map((r) => `${r.participant}=${r.status} (score ${r.score}, up ${r.uplink}${r.uplinkDegraded === "true" ? " DEGRADED" : ""}, down ${r.downlink}${r.downlinkDegraded === "true" ? " DEGRADED" : ""}${r.reason ? `, "${r.reason}"` : ""})`).join("; ")}`);

    // The interpreter's degraded event in the timeline.
    const eventSel = `#events li[data-kind="degraded"][data-participant="${DEGRADED}"]`;
    await waitInPage(page, `the event ${eventSel}`, 5_000, (sel) => document.querySelector(sel) !== null, eventSel);
    measured.events = await page.$$eval("#events li", (els) => els.slice(0, 12).map((e) => `${e.dataset.kind}/${e.dataset.participant}: ${e.textContent.replace(/\s+/g, " ").trim()}`));
    t.diagnostic(`events (newest first): ${JSON.stringify(measured.events)}`);

    // Charts that update: drawn with points, then `data-last` and `data-redraws` grow over ~3 s.
    const charts = ["chart-bitrate", "chart-loss", "chart-jitter", "chart-rtt"];
    const readCharts = () => page.evaluate((ids) => Object.fromEntries(ids.map((id) => {
      const el = document.getElementById(id);
      return [id, {
        points: Number(el?.dataset.points ?? 0),
        series: Number(el?.dataset.series ?? 0),
        last: Number(el?.dataset.last || 0),
        redraws: Number(el?.dataset.redraws ?? 0),
        canvas: el?.querySelector("canvas") !== null && el?.querySelector("canvas") !== undefined,
      }];
    })), charts);
    await waitInPage(page, "the charts drawn (a uPlot canvas with points for four participants)", 5_000, (ids) => ids.every((id) => {
      const el = document.getElementById(id);
      return el?.querySelector(".uplot canvas") && Number(el.dataset.points) >= 2 && Number(el.dataset.series) >= 4;
    }), charts);
    const before = await readCharts();
    await sleep(3_000);
    const after = await waitUntil("every chart's data-last and data-redraws to grow", 3_000, async () => {
      const now = await readCharts();
      return charts.every((id) => now[id].last > before[id].last && now[id].redraws > before[id].redraws) ? now : false;
    }, 250).catch(() => readCharts()); // the asserts below say which did not move
    for (const id of charts) {
      assert.ok(after[id].points >= 2, `${id} has points: ${JSON.stringify(after[id])}`);
      assert.ok(after[id].last > before[id].last, `${id} data-last grows: ${before[id].last} -> ${after[id].last}`);
      assert.ok(after[id].redraws > before[id].redraws, `${id} data-redraws grows: ${before[id].redraws} -> ${after[id].redraws}`);
    }
    measured.charts = Object.fromEntries(charts.map((id) => [id, {
      points: [before[id].points, after[id].points],
      series: after[id].series,
      lastAdvancedMs: after[id].last - before[id].last,
      redraws: [before[id].redraws, after[id].redraws],
    }]));
    t.diagnostic(`charts over ~3 s: ${JSON.stringify(measured.charts)}`);

    // A few more seconds of samples, so the lines in the screenshot are more than a sliver at the
    // right edge of the 5-minute window (the charts keep redrawing meanwhile).
    const drawn = await waitUntil("about 10 s of samples in the charts", 10_000, async () => {
      const now = await readCharts();
      return charts.every((id) => now[id].points >= 10) ? now : false;
    }, 250).catch(() => readCharts());
    measured.chartPointsAtScreenshot = Object.fromEntries(charts.map((id) => [id, drawn[id].points]));

    // Layout, then the screenshot (rows and charts re-read right before it).
    const callOverlaps = await page.evaluate(overlapsInPage, [".participant-row", ".chart", "#events", "#end-call", "#export-csv", "header"]);
    assert.deepEqual(callOverlaps, [], "nothing overlaps on the call page");
    const shotRows = await page.evaluate(rowsOf);
    await page.screenshot({ path: join(artifacts, "operator-call.png"), fullPage: true });
    measured.rowsAtScreenshot = shotRows.map((r) => `${r.participant}=${r.status}${r.uplinkDegraded === "true" ? " (uplink degraded)" : ""}`);

    assert.deepEqual(pageProblems, [], "no page errors or console errors");
    measured.totalMs = Date.now() - began;
    t.diagnostic(`total ${measured.totalMs} ms`);
  }));
