// End-to-end test of interpretation in the booth web client (issue 6, "What it must show" point 3):
// the real `dragoman serve` (floor_duck_gain 0.2, gain_ramp_ms 300), a call in simultaneous mode, a
// `dragoman-bot` company speaking on the floor (`ko`), a `dragoman-bot` interpreter (`ko`↔`en`)
// publishing into `en`, and a headless Chromium listener (buyer, `en`) on the server's own `/join`:
//
//   1. the listener picks "Original (floor)": the floor plays at 1.0 and the interpreter, once it
//      publishes, is not routed (gain target 0);
//   2. the listener picks `en` in `#language-select` while the interpreter is live: in the page's
//      Web Audio graph the floor's GainNode ramps 1.0 → 0.2 (sampled every few ms: several values in
//      between, monotonic, at the configured ramp's speed, ending at 0.2 ± 0.02) and the
//      interpretation's GainNode ramps to 1.0; `#listening-state` says so; the interpretation's
//      audio really flows through the graph (analyser level > 0);
//   3. the interpreter bot leaves: the floor ramps 0.2 → 1.0 the same way;
//   4. the booth console in two more Chromium pages, a second booth (`ko`↔`th`): the first
//      interpreter is LIVE into Thai (its microphone published on channel `th`), switches direction
//      with the "D" key and back, picks a relay input; the listener switching to `th` is ducked
//      under it; a partner joins passive, asks to take over, the live one accepts from the banner,
//      and the listener's graph follows (only the new voice at 1.0, never both). Screenshots of both
//      consoles and of the listener go to `artifacts/e2e/interpretation-*.png`.
//
// Bounded: every wait has a timeout, a watchdog tears everything down at 110 s, and the browser, the
// bots and the server are closed in `finally`. Only 127.0.0.1 addresses are used. Logs under
// `artifacts/e2e/interpretation/`, the numbers behind each assertion in
// `artifacts/e2e/interpretation-measurements.json`.
//
// Needs `cargo build --bin dragoman --bin dragoman-bot` first (or DRAGOMAN_BIN_DIR) and Debian's
// chromium at /usr/bin/chromium (or CHROMIUM). Run: `npm run e2e` in web/ (after the call test).
/* global window, document */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";

import { openParticipantPage, waitInPage } from "./browser.mjs";
import { ARTIFACTS as artifacts, runScenario, sleep } from "./harness.mjs";

const CALL = "booth-e2e-interpretation";
const WATCHDOG_MS = 110_000;
const DUCK = 0.2;
const RAMP_MS = 300;

const PEOPLE = {
  company: { id: "company-1", role: "company", name: "Kim Minji", languages: "ko" },
  interpreter: { id: "interp-1", role: "interpreter", name: "Lee Jiwoo", languages: "ko,en" },
  listener: { id: "buyer-1", role: "buyer", name: "Jane Miller", languages: "en" },
  boothA: { id: "interp-th-1", role: "interpreter", name: "Park Sora", languages: "ko,th" },
  boothB: { id: "interp-th-2", role: "interpreter", name: "Choi Minho", languages: "ko,th" },
};

// --- in-page probes -------------------------------------------------------------------------------

/** Starts recording `audioGains()` every 5 ms (in the page). */
function startSampler(page) {
  return page.evaluate(() => {
    window.__e2eSamples = [];
    clearInterval(window.__e2eSampler);
    const sample = () => window.__e2eSamples.push({ t: performance.now(), g: window.dragoman.audioGains() });
    sample();
    window.__e2eSampler = setInterval(sample, 5);
  });
}

/** Stops the sampler and returns its samples, reduced to the publications asked for. */
function stopSampler(page, pubs) {
  return page.evaluate((pubs) => {
    clearInterval(window.__e2eSampler);
    return window.__e2eSamples.map((s) => ({
      t: s.t,
      g: Object.fromEntries(pubs.filter((p) => s.g[p] !== undefined).map((p) => [p, { target: s.g[p].target, current: s.g[p].current }])),
    }));
  }, pubs);
}

/**
 * The ramp of one publication's gain in `samples`, from the first sample whose target is `to`:
 * time-stamped values, the distinct in-between values, whether it is monotonic, the least-squares slope over
 * the in-between values, and when it settled within `tolerance` of `to`.
 */
function analyseRamp(samples, pub, from, to, tolerance = 0.02) {
  const i0 = samples.findIndex((s) => s.g[pub] !== undefined && Math.abs(s.g[pub].target - to) < 1e-6);
  assert.ok(i0 >= 0, `the target of ${pub} became ${to} while sampling`);
  const t0 = samples[i0].t;
  const before = i0 > 0 ? samples[i0 - 1].g[pub]?.current : undefined;
  const series = samples.slice(i0).filter((s) => s.g[pub] !== undefined).map((s) => ({ ms: s.t - t0, v: s.g[pub].current }));
  const [lo, hi] = [Math.min(from, to), Math.max(from, to)];
  const margin = 0.03 * (hi - lo);
  const between = series.filter((p) => p.v > lo + margin && p.v < hi - margin);
  // The audio thread updates the value once per rendered buffer (~10 ms); count distinct values.
  const distinctBetween = between.filter((p, i) => i === 0 || p.v !== between[i - 1].v);
  const direction = Math.sign(to - from);
  const monotonic = series.every((p, i) => i === 0 || direction * (p.v - series[i - 1].v) >= -1e-3);
  let slopePerMs = null;
  if (between.length >= 2) {
    const n = between.length;
    const mx = between.reduce((a, p) => a + p.ms, 0) / n;
    const my = between.reduce((a, p) => a + p.v, 0) / n;
    const sxy = between.reduce((a, p) => a + (p.ms - mx) * (p.v - my), 0);
    const sxx = between.reduce((a, p) => a + (p.ms - mx) ** 2, 0);
    slopePerMs = sxx > 0 ? sxy / sxx : null;
  }
  const settled = series.find((p) => Math.abs(p.v - to) <= tolerance);
  const round = (x) => Math.round(x * 1000) / 1000;
  return {
    valueBefore: before === undefined ? null : round(before),
    samples: series.length,
    between: distinctBetween.map((p) => [Math.round(p.ms), round(p.v)]),
    monotonic,
    slopePerMs,
    rampMsFromSlope: slopePerMs === null || slopePerMs === 0 ? null : Math.round(Math.abs((to - from) / slopePerMs)),
    settledAtMs: settled === undefined ? null : Math.round(settled.ms),
    final: round(series.at(-1).v),
  };
}

/** Asserts a sampled ramp looks like a linear `ramp_ms` ramp from `from` to `to`. */
function assertRamp(what, r, from, to, rampMs) {
  assert.ok(r.valueBefore === null || Math.abs(r.valueBefore - from) <= 0.02, `${what}: at ${from} before the ramp (${r.valueBefore})`);
  assert.ok(r.between.length >= 3, `${what}: at least 3 distinct values strictly between ${from} and ${to}, got ${JSON.stringify(r.between)}`);
  assert.ok(r.between.every(([ms]) => ms <= rampMs + 60), `${what}: the in-between values all fall within the ramp (${JSON.stringify(r.between)})`);
  assert.ok(r.monotonic, `${what}: the gain moves one way only`);
  assert.ok(
    r.rampMsFromSlope !== null && r.rampMsFromSlope >= rampMs * 0.7 && r.rampMsFromSlope <= rampMs * 1.4,
    `${what}: the slope says a ${r.rampMsFromSlope} ms ramp (configured ${rampMs} ms)`,
  );
  assert.ok(r.settledAtMs !== null && r.settledAtMs <= rampMs + 200, `${what}: settled at ${to} ± 0.02 ${r.settledAtMs} ms after the new target`);
  assert.ok(Math.abs(r.final - to) <= 0.02, `${what}: final value ${r.final} is ${to} ± 0.02`);
}

test("interpretation: a Chromium listener's Web Audio graph ducks the floor under a live interpreter, and the booth console", { timeout: WATCHDOG_MS + 15_000 }, (t) =>
  runScenario(t, {
    watchdogMs: WATCHDOG_MS,
    workPrefix: "dragoman-e2e-interp-",
    measurements: "interpretation-measurements.json",
    logDir: "interpretation",
    ownFiles: ["interpretation-listener.png", "interpretation-console-live.png", "interpretation-console-handover.png"],
  }, async (s) => {
    const { measured, pageProblems, step } = s;
    const { http } = await s.startServer({ config: `floor_duck_gain = ${DUCK}\ngain_ramp_ms = ${RAMP_MS}\n` });
    const token = (p) => s.token(CALL, { ...p, mode: "simultaneous" });
    await s.assertServesPage("/join", "join.js", "web client");

    const startBot = (p, channel) =>
      s.startBot(p.id, { token: token(p), publish: "audio", subscribe: "none", duration: "100s", channel });

    const browser = await s.launchBrowser();
    /** Opens a participant's join page and joins with the microphone only. */
    const openAndJoin = async (p, viewport = { width: 1280, height: 800 }) => {
      const page = await openParticipantPage(browser, http, token(p), {
        viewport,
        onPageError: (message) => pageProblems.push(`${p.id}: page error: ${message}`),
        onConsoleError: (text) => pageProblems.push(`${p.id}: console error: ${text}`),
      });
      await waitInPage(page, `${p.id}: pre-join ready`, 10_000, () =>
        document.body.dataset.view === "prejoin" && !document.querySelector("#join-audio-only").hidden && !document.querySelector("#join-button").disabled);
      await page.click("#join-audio-only");
      await waitInPage(page, `${p.id}: connected with a routing message`, 10_000, () =>
        window.dragoman.state().connection === "connected" && window.dragoman.routing() !== null);
      return page;
    };
    const routingOf = (page) => page.evaluate(() => window.dragoman.routing());
    const gainsOf = (page) => page.evaluate(() => window.dragoman.audioGains());

    const bots = {};
    let listener;
    let floorPub;
    let interpPub;

    await step("1. the listener joins a simultaneous call and picks \"Original (floor)\": floor at 1.0, the interpreter not routed", async () => {
      bots.company = startBot(PEOPLE.company, "floor");
      listener = await openAndJoin(PEOPLE.listener);
      assert.equal(await listener.evaluate(() => window.dragoman.audioContextState()), "running", "the AudioContext runs");
      // The company's floor audio arrives, is routed at 1.0 and fades in to 1.0 in the graph.
      const routing = await waitInPage(listener, "the company's floor audio routed and in the graph", 10_000, (company) => {
        const r = window.dragoman.routing();
        const route = r?.routes.find((x) => x.participant === company);
        return route !== undefined && window.dragoman.audioGains()[route.publication] !== undefined ? r : false;
      }, PEOPLE.company.id).then((h) => h.jsonValue());
      assert.equal(routing.mode, "simultaneous");
      assert.equal(routing.ramp_ms, RAMP_MS, "ramp_ms is the configured gain_ramp_ms");
      assert.equal(routing.summary.listening, "en", "a listener starts on their token's first language");
      floorPub = routing.routes.find((r) => r.participant === PEOPLE.company.id).publication;
      const options = await listener.$$eval("#language-select option", (os) => os.map((o) => [o.value, o.textContent]));
      assert.deepEqual(options, [["", "Original (floor)"], ["en", "English (en)"], ["ko", "Korean (ko)"]]);
      assert.equal(await listener.inputValue("#language-select"), "en");

      await listener.selectOption("#language-select", "");
      await waitInPage(listener, "routing: original sound", 5_000, () => window.dragoman.routing().summary.listening === null);
      bots.interpreter = startBot(PEOPLE.interpreter, "en");
      // The interpreter's audio is negotiated onto the listener's subscriber transport but not routed.
      interpPub = await waitInPage(listener, "the interpreter's audio track in the graph (not routed)", 10_000, (floor) => {
        const ids = Object.keys(window.dragoman.audioGains()).filter((id) => id !== floor);
        return ids.length === 1 ? ids[0] : false;
      }, floorPub).then((h) => h.jsonValue());
      await waitInPage(listener, "floor at 1.0, interpreter at 0", 5_000, ([floor, interp]) => {
        const g = window.dragoman.audioGains();
        return Math.abs(g[floor].current - 1) < 1e-3 && g[interp].target === 0 && g[interp].current === 0;
      }, [floorPub, interpPub]);
      const state = await listener.evaluate(() => ({
        channel: document.querySelector("#listening-state").dataset.channel,
        text: document.querySelector("#listening-state").textContent,
        routes: window.dragoman.routing().routes.map((r) => r.publication),
      }));
      assert.equal(state.channel, "floor");
      assert.deepEqual(state.routes, [floorPub], "only the floor is routed to a listener of the original sound");
      measured.original = { floorPub, interpPub, gains: await gainsOf(listener), state };
      t.diagnostic(`original sound: ${JSON.stringify(measured.original)}`);
    });

    await step("2. the listener picks English while the interpreter is live: the floor ramps 1.0 → 0.2, the interpretation to 1.0", async () => {
      await startSampler(listener);
      const picked = Date.now();
      await listener.selectOption("#language-select", "en");
      await waitInPage(listener, "the ramps done (floor 0.2, interpretation 1.0)", 5_000, ([floor, interp]) => {
        const g = window.dragoman.audioGains();
        return Math.abs(g[floor].current - 0.2) < 1e-3 && Math.abs(g[interp].current - 1) < 1e-3;
      }, [floorPub, interpPub]);
      await sleep(100);
      const samples = await stopSampler(listener, [floorPub, interpPub]);
      const routing = await routingOf(listener);
      assert.equal(routing.summary.listening, "en");
      assert.equal(routing.summary.live_channel, "en");
      assert.equal(routing.summary.floor_gain, DUCK);
      assert.deepEqual(
        routing.routes.map((r) => [r.publication, r.channel, r.gain, r.priority]),
        [[floorPub, "floor", DUCK, "floor"], [interpPub, "en", 1, "interpretation"]],
      );
      const floor = analyseRamp(samples, floorPub, 1, DUCK);
      const interp = analyseRamp(samples, interpPub, 0, 1);
      assertRamp("floor ducking", floor, 1, DUCK, RAMP_MS);
      assertRamp("interpretation fade-in", interp, 0, 1, RAMP_MS);
      // The interpretation's audio plays through the graph (the muted <audio> keeps the track flowing).
      const level = await waitInPage(listener, "interpretation audio level > 0 after its gain node", 5_000, (interp) => {
        const l = window.dragoman.audioGains()[interp].level;
        return l > 0.001 ? l : false;
      }, interpPub).then((h) => h.jsonValue());
      const shown = await listener.evaluate(() => ({
        channel: document.querySelector("#listening-state").dataset.channel,
        text: document.querySelector("#listening-state").textContent,
        muted: [...document.querySelectorAll(".audio-sinks audio")].map((a) => a.muted),
      }));
      assert.equal(shown.channel, "en");
      assert.match(shown.text, /English interpretation, the floor at 20 %/);
      assert.ok(shown.muted.length >= 2 && shown.muted.every((m) => m), "the tiles' <audio> elements are muted: Web Audio plays");
      measured.duck = { pickedToSettledMs: Date.now() - picked, samples: samples.length, floor, interpretation: interp, interpretationLevel: level, shown };
      t.diagnostic(`duck: floor ${JSON.stringify(floor)}`);
      t.diagnostic(`duck: interpretation ${JSON.stringify(interp)}`);
      await listener.screenshot({ path: join(artifacts, "interpretation-listener.png") });
    });

    await step("3. the interpreter leaves: the floor ramps 0.2 → 1.0", async () => {
      await startSampler(listener);
      const exit = await s.processes.stop(bots.interpreter, "SIGINT", 10_000);
      measured.interpreterExit = exit;
      await waitInPage(listener, "the floor back at 1.0", 5_000, (floor) => Math.abs(window.dragoman.audioGains()[floor].current - 1) < 1e-3, floorPub);
      await sleep(100);
      const samples = await stopSampler(listener, [floorPub, interpPub]);
      const floor = analyseRamp(samples, floorPub, DUCK, 1);
      assertRamp("floor back up", floor, DUCK, 1, RAMP_MS);
      const routing = await routingOf(listener);
      assert.equal(routing.summary.live_channel, null);
      assert.equal(routing.summary.floor_gain, 1);
      assert.deepEqual(routing.routes.map((r) => [r.publication, r.gain]), [[floorPub, 1]]);
      await waitInPage(listener, "the interpreter's node gone, #listening-state back on the floor", 5_000, (interp) =>
        window.dragoman.audioGains()[interp] === undefined && document.querySelector("#listening-state").dataset.channel === "floor", interpPub);
      measured.unduck = { floor, listeningState: await listener.textContent("#listening-state") };
      t.diagnostic(`unduck: floor ${JSON.stringify(floor)}`);
    });

    await step("4. the booth console: LIVE, direction switch by key, relay input, handover between two browser interpreters", async () => {
      const a = await openAndJoin(PEOPLE.boothA, { width: 1280, height: 720 });
      await waitInPage(a, "A's console LIVE into Thai", 10_000, () => {
        const live = document.querySelector("#live-indicator");
        return !document.querySelector("#booth-console").hidden && live.dataset.live === "true" &&
          document.querySelector("#output-channel").dataset.output === "th";
      });
      const own = (await a.evaluate(() => window.dragoman.state().publications)).filter((p) => p.kind === "audio");
      assert.deepEqual(own.map((p) => p.channel), ["th"], "the interpreter's microphone is published on its output channel");
      const aPub = own[0].id;
      const consoleA = await a.evaluate(() => ({
        listener: document.querySelector("#listener-panel").hidden,
        text: document.querySelector("#live-indicator").textContent.trim(),
        switchTo: document.querySelector("#switch-direction").dataset.to,
        color: window.getComputedStyle(document.querySelector("#live-indicator")).backgroundColor,
        box: document.querySelector("#live-indicator").getBoundingClientRect().toJSON(),
      }));
      assert.equal(consoleA.listener, true, "no language picker for an interpreter");
      assert.equal(consoleA.text, "LIVE · into Thai");
      assert.equal(consoleA.switchTo, "ko");
      assert.equal(consoleA.color, "rgb(220, 38, 38)", "the LIVE indicator is red");
      assert.ok(consoleA.box.width >= 250 && consoleA.box.height >= 50, `the LIVE indicator is big: ${JSON.stringify(consoleA.box)}`);

      // One key: D switches into Korean (free: nobody else speaks into it) and back.
      await a.evaluate(() => document.activeElement?.blur());
      const switches = [];
      for (const want of ["ko", "th"]) {
        const pressed = Date.now();
        await a.keyboard.press("d");
        await waitInPage(a, `output ${want} and live`, 5_000, (want) => {
          const b = window.dragoman.routing().summary.booth;
          return b.output === want && b.live && document.querySelector("#output-channel").dataset.output === want &&
            document.querySelector("#live-indicator").dataset.live === "true";
        }, want);
        switches.push({ to: want, ms: Date.now() - pressed });
      }
      // Relay input: English (nobody interprets into it now, so the console says the floor plays).
      await a.selectOption("#input-select", "en");
      await waitInPage(a, "input en", 5_000, () => window.dragoman.routing().summary.booth.input === "en");
      const relayNote = await a.textContent("#booth-note");
      assert.match(relayNote, /Nobody is speaking into English now/);
      const inputOptions = await a.$$eval("#input-select option", (os) => os.map((o) => o.value));
      assert.deepEqual(inputOptions, ["floor", "en", "ko"]);

      // The listener switches to Thai: ducked under A.
      await listener.selectOption("#language-select", "th");
      await waitInPage(listener, "listener: floor 0.2 under A's Thai at 1.0", 5_000, ([floor, aPub]) => {
        const g = window.dragoman.audioGains();
        return g[aPub] !== undefined && Math.abs(g[floor].current - 0.2) < 0.02 && Math.abs(g[aPub].current - 1) < 0.02;
      }, [floorPub, aPub]);

      // B joins the same booth: passive. B asks to take over; A sees the request and accepts.
      const b = await openAndJoin(PEOPLE.boothB, { width: 1280, height: 720 });
      await waitInPage(b, "B's console off air with a take-over button", 10_000, () =>
        !document.querySelector("#booth-console").hidden && document.querySelector("#live-indicator").dataset.live === "false" &&
        document.querySelector("#live-indicator").dataset.status === "off-air" && !document.querySelector("#handover-request").hidden);
      const bPub = (await b.evaluate(() => window.dragoman.state().publications)).find((p) => p.kind === "audio").id;
      assert.equal(await b.textContent("#handover-request"), `Take over from ${PEOPLE.boothA.name}`);
      await b.click("#handover-request");
      await waitInPage(a, "A: the handover banner", 5_000, () => !document.querySelector("#handover-banner").hidden);
      assert.equal(await a.textContent("#handover-text"), `${PEOPLE.boothB.name} asks to take over`);
      // B's own routing push may land after A's: wait for it rather than read B at the instant A changed.
      await waitInPage(b, "B can withdraw its pending request", 5_000, () => !document.querySelector("#handover-withdraw").hidden);
      await a.screenshot({ path: join(artifacts, "interpretation-console-live.png") });

      // Sample the listener's Thai routes through the handover: never both interpreters at once.
      await listener.evaluate(() => {
        window.__e2eThai = [];
        window.__e2eThaiTimer = setInterval(() => {
          const r = window.dragoman.routing();
          window.__e2eThai.push(r.routes.filter((x) => x.channel === "th").map((x) => x.publication).join(","));
        }, 5);
      });
      const accepted = Date.now();
      await a.click("#handover-accept");
      await waitInPage(b, "B live into Thai", 5_000, () => document.querySelector("#live-indicator").dataset.live === "true");
      await waitInPage(a, "A off air", 5_000, () =>
        document.querySelector("#live-indicator").dataset.live === "false" && document.querySelector("#handover-banner").hidden);
      const takeoverMs = Date.now() - accepted;
      await waitInPage(listener, "listener: B at 1.0, A gone, floor still 0.2", 5_000, ([floor, aPub, bPub]) => {
        const g = window.dragoman.audioGains();
        return g[bPub] !== undefined && Math.abs(g[bPub].current - 1) < 0.02 && g[aPub].target === 0 && g[aPub].current < 0.02 &&
          Math.abs(g[floor].current - 0.2) < 0.02;
      }, [floorPub, aPub, bPub]);
      const thaiRoutes = await listener.evaluate(() => {
        clearInterval(window.__e2eThaiTimer);
        return [...new Set(window.__e2eThai)];
      });
      assert.ok(thaiRoutes.every((r) => !r.includes(",")), `the listener never had two Thai routes: ${JSON.stringify(thaiRoutes)}`);
      assert.deepEqual((await routingOf(listener)).routes.filter((r) => r.channel === "th").map((r) => r.publication), [bPub]);
      await sleep(300); // let the console paint
      await b.screenshot({ path: join(artifacts, "interpretation-console-handover.png") });
      const after = {
        a: await a.evaluate(() => ({ live: document.querySelector("#live-indicator").dataset.live, text: document.querySelector("#live-indicator").textContent.trim() })),
        b: await b.evaluate(() => ({ live: document.querySelector("#live-indicator").dataset.live, text: document.querySelector("#live-indicator").textContent.trim() })),
      };
      assert.deepEqual(after.a, { live: "false", text: "OFF AIR" });
      assert.deepEqual(after.b, { live: "true", text: "LIVE · into Thai" });
      measured.console = { aPub, bPub, consoleA, switches, relayNote, inputOptions, takeoverMs, thaiRoutes, after };
      t.diagnostic(`console: ${JSON.stringify(measured.console)}`);
      assert.deepEqual(pageProblems, [], "no uncaught errors or console errors in the pages");
    });
  }));
