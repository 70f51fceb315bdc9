/* global structuredClone */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  ORIGINAL_LABEL,
  callLanguages,
  consoleView,
  isDirectionShortcut,
  isInterpreter,
  languageLabel,
  languageName,
  languageOptions,
  listeningView,
  publishChannel,
} from "./.build/interpretation.js";

const P = {
  company: { id: "company-1", name: "Kim Minji", role: "company", languages: ["ko"] },
  interp: { id: "interp-1", name: "Lee Jiwoo", role: "interpreter", languages: ["ko", "en"] },
  interp2: { id: "interp-2", name: "Park Sora", role: "interpreter", languages: ["en", "ko"] },
  office: { id: "office-1", name: "Tanaka Yui", role: "office", languages: ["en", "th"] },
  buyer: { id: "buyer-1", name: "Somchai", role: "buyer", languages: ["th"] },
};

const routing = ({ participant = "buyer-1", mode = "simultaneous", routes = [], listening = null, live = null, floor = 1, booth } = {}) => ({
  type: "routing",
  participant,
  mode,
  ramp_ms: 300,
  routes,
  summary: { listening, live_channel: live, floor_gain: floor, ...(booth === undefined ? {} : { booth: { handovers: [], ...booth } }) },
});
const route = (publication, participant, channel, gain) => ({
  publication,
  participant,
  channel,
  gain,
  priority: channel === "floor" ? "floor" : "interpretation",
});

test("who has a booth: interpreters, and an office with exactly two languages", () => {
  assert.equal(isInterpreter(P.interp), true);
  assert.equal(isInterpreter(P.office), true);
  assert.equal(isInterpreter({ role: "office", languages: ["en"] }), false);
  assert.equal(isInterpreter({ role: "office", languages: ["en", "en"] }), false);
  assert.equal(isInterpreter({ role: "company", languages: ["ko", "en"] }), false);
  assert.equal(isInterpreter({ role: "buyer", languages: ["th", "en"] }), false);
  assert.equal(isInterpreter({ role: "operator", languages: ["th", "en"] }), false);
});

test("publish channel: the booth output, the pair's second language before routing, else floor", () => {
  assert.equal(publishChannel(P.buyer, null), "floor");
  assert.equal(publishChannel({ role: "buyer", languages: ["th", "en"] }, null), "floor");
  assert.equal(publishChannel(P.interp, null), "en");
  assert.equal(publishChannel(P.office, null), "th");
  const switched = routing({ participant: "interp-1", booth: { pair: ["ko", "en"], output: "ko", input: "floor", on_air: true, live: true } });
  assert.equal(publishChannel(P.interp, switched), "ko");
  // A listener's routing has no booth: floor.
  assert.equal(publishChannel(P.company, routing({ listening: "ko" })), "floor");
});

test("the call's languages and the listener's options", () => {
  const langs = callLanguages(P.buyer, [P.company, P.interp, P.office]);
  assert.deepEqual(langs, ["en", "ko", "th"]);
  assert.deepEqual(callLanguages(null, []), []);
  const options = languageOptions(langs, "en");
  assert.deepEqual(options.map((o) => o.value), ["", "en", "ko", "th"]);
  assert.equal(options[0].label, ORIGINAL_LABEL);
  assert.equal(options[1].label, "English (en)");
  // A listening language nobody has any more is still offered.
  assert.deepEqual(languageOptions(["ko"], "ja").map((o) => o.value), ["", "ja", "ko"]);
  assert.equal(languageLabel("xx-unknown"), "xx-unknown");
  assert.equal(languageName("th"), "Thai");
});

test("what a listener hears, in every situation", () => {
  assert.deepEqual(listeningView(null).active, false);
  const cases = [
    [routing({ listening: "en", live: "en", floor: 0.2 }), { active: true, value: "en", channel: "en", floorGain: 0.2 }, /English interpretation, the floor at 20 %/],
    [routing({ listening: "en", live: null, floor: 1 }), { active: true, value: "en", channel: "floor", floorGain: 1 }, /Nobody is interpreting into English now/],
    [routing({ listening: null, floor: 1 }), { active: true, value: "", channel: "floor", floorGain: 1 }, /original sound/],
    [routing({ mode: "consecutive", listening: "en", floor: 1 }), { active: false, value: "en", channel: "all", floorGain: 1 }, /Consecutive/],
  ];
  for (const [r, want, text] of cases) {
    const v = listeningView(r);
    assert.deepEqual({ active: v.active, value: v.value, channel: v.channel, floorGain: v.floorGain }, want);
    assert.match(v.text, text);
  }
  // An interpreter's routing is not a listener's.
  const booth = routing({ participant: "interp-1", booth: { pair: ["ko", "en"], output: "en", input: "floor", on_air: true, live: true } });
  assert.equal(listeningView(booth).active, false);
});

test("console: none for listeners", () => {
  assert.equal(consoleView(null, "buyer-1", [], []), null);
  assert.equal(consoleView(routing({ listening: "th" }), "buyer-1", [P.company], ["ko", "th"]), null);
});

test("console: a live interpreter alone in their booth", () => {
  const r = routing({
    participant: "interp-1",
    routes: [route("PB_1", "company-1", "floor", 1), route("PB_7", "buyer-1", "floor", 1)],
    booth: { pair: ["ko", "en"], output: "en", input: "floor", on_air: true, live: true },
  });
  const v = consoleView(r, "interp-1", [P.company, P.office, P.buyer], ["en", "ko", "th"]);
  assert.equal(v.status, "live");
  assert.equal(v.live, true);
  assert.equal(v.liveText, "LIVE · into English");
  assert.equal(v.output, "en");
  assert.equal(v.switchTo, "ko");
  assert.deepEqual(v.inputOptions, ["floor", "ko", "th"]);
  assert.deepEqual(v.partners, []);
  assert.equal(v.handoverPartner, null);
  assert.equal(v.canRequestHandover, false);
  assert.deepEqual(v.incoming, []);
  assert.equal(v.note, "");
});

test("console: switched direction, relay input, channel held by another booth", () => {
  const r = routing({
    participant: "office-1",
    live: null,
    routes: [route("PB_1", "company-1", "floor", 1)],
    booth: { pair: ["en", "th"], output: "en", input: "ko", on_air: true, live: false, output_held_by: "interp-1" },
  });
  const v = consoleView(r, "office-1", [P.company, P.interp, P.buyer], ["en", "ko", "th"]);
  assert.equal(v.status, "waiting");
  assert.equal(v.switchTo, "th");
  assert.equal(v.heldBy, "interp-1");
  assert.equal(v.liveText, "WAITING · English is held by Lee Jiwoo");
  assert.deepEqual(v.inputOptions, ["floor", "ko", "th"]);
  assert.equal(v.input, "ko");
  assert.match(v.note, /Nobody is speaking into Korean now/);
  // On air but not publishing: not live, nobody holds the channel.
  const silent = consoleView(routing({ participant: "office-1", booth: { pair: ["en", "th"], output: "th", input: "floor", on_air: true, live: false } }), "office-1", [], ["en", "th"]);
  assert.equal(silent.status, "waiting");
  assert.match(silent.liveText, /not live/);
});

test("console: a passive partner, the handover request and its answer", () => {
  // interp-2 joined second: passive; it hears the on-air partner's output at 1.0.
  const passive = routing({
    participant: "interp-2",
    routes: [route("PB_1", "company-1", "floor", 1), route("PB_3", "interp-1", "en", 1)],
    booth: { pair: ["en", "ko"], output: "ko", input: "floor", on_air: false, live: false },
  });
  let v = consoleView(passive, "interp-2", [P.company, P.interp], ["en", "ko"]);
  assert.equal(v.status, "off-air");
  assert.equal(v.liveText, "OFF AIR");
  assert.deepEqual(v.partners, [{ id: "interp-1", name: "Lee Jiwoo" }]);
  assert.deepEqual(v.handoverPartner, { id: "interp-1", name: "Lee Jiwoo" });
  assert.equal(v.handoverLabel, "Take over from Lee Jiwoo");
  assert.equal(v.canRequestHandover, true);

  // It asked: the request shows as outgoing, no second request.
  const asked = structuredClone(passive);
  asked.summary.booth.handovers = [{ from: "interp-2", to: "interp-1" }];
  v = consoleView(asked, "interp-2", [P.company, P.interp], ["en", "ko"]);
  assert.deepEqual(v.outgoing, [{ to: "interp-1", name: "Lee Jiwoo" }]);
  assert.deepEqual(v.incoming, []);
  assert.equal(v.canRequestHandover, false);

  // The on-air partner sees an incoming request to accept or decline.
  const live = routing({
    participant: "interp-1",
    routes: [route("PB_1", "company-1", "floor", 1)],
    booth: { pair: ["ko", "en"], output: "en", input: "floor", on_air: true, live: true, handovers: [{ from: "interp-2", to: "interp-1" }] },
  });
  v = consoleView(live, "interp-1", [P.company, P.interp2], ["en", "ko"]);
  assert.deepEqual(v.incoming, [{ from: "interp-2", name: "Park Sora", text: "Park Sora asks to take over" }]);
  assert.equal(v.handoverLabel, "Hand over to Park Sora");
  assert.equal(v.canRequestHandover, false);

  // "Please take over" from the live one, seen by the passive one.
  const relief = structuredClone(passive);
  relief.summary.booth.handovers = [{ from: "interp-1", to: "interp-2" }];
  v = consoleView(relief, "interp-2", [P.company, P.interp], ["en", "ko"]);
  assert.equal(v.incoming[0].text, "Lee Jiwoo asks you to take over");
});

test("console: consecutive mode says the console does not change what people hear", () => {
  const r = routing({ mode: "consecutive", participant: "interp-1", booth: { pair: ["ko", "en"], output: "en", input: "floor", on_air: true, live: true } });
  assert.match(consoleView(r, "interp-1", [], []).note, /Consecutive/);
});

test("the direction shortcut: a plain D, not held, not while typing", () => {
  const key = (over) => ({ key: "d", ctrlKey: false, metaKey: false, altKey: false, repeat: false, editing: false, ...over });
  assert.equal(isDirectionShortcut(key()), true);
  assert.equal(isDirectionShortcut(key({ key: "D" })), true);
  assert.equal(isDirectionShortcut(key({ key: " " })), false);
  assert.equal(isDirectionShortcut(key({ ctrlKey: true })), false);
  assert.equal(isDirectionShortcut(key({ metaKey: true })), false);
  assert.equal(isDirectionShortcut(key({ altKey: true })), false);
  assert.equal(isDirectionShortcut(key({ repeat: true })), false);
  assert.equal(isDirectionShortcut(key({ editing: true })), false);
});
