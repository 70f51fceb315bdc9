import assert from "node:assert/strict";
import { test } from "node:test";
import { activeDegradations, callReason, degradedDirections, metricReason, participantLabel, participantReason } from "./.build/operator/reason.js";

const dir = (d = {}) => ({ score: 4.3, bitrate_kbps: 900, loss_percent: 0, jitter_ms: 4, rtt_ms: 30, nacks: 0, plis: 0, fps: 30, freezes: 0, audio_level: 0.1, ...d });
const p = (id, role, extra = {}) => ({ id, name: `${id} name`, role, connected: true, score: 4.3, status: "good", uplink: dir(extra.uplink), downlink: dir(extra.downlink), ...{ ...extra, uplink: dir(extra.uplink), downlink: dir(extra.downlink) } });
const ev = (at, participant, kind, direction = null, detail = "") => ({ at, participant, kind, direction, detail });

test("a participant is named by role when the role is unique, else by name", () => {
  const all = [p("a", "company"), p("b", "interpreter"), p("c", "interpreter")];
  assert.equal(participantLabel(all[0], all), "company");
  assert.equal(participantLabel(all[1], all), "b name");
});

test("the event names the direction; the current numbers name the cause", () => {
  const interp = p("i1", "interpreter", { status: "degraded", score: 2.1, uplink: { score: 2.0, loss_percent: 21.3 }, downlink: { score: 1.9 } });
  const all = [p("c1", "company"), interp, p("b1", "buyer")];
  const events = [ev(1, "i1", "joined"), ev(2, "i1", "degraded", "uplink", "score 2.8, loss 16%, jitter 0 ms, rtt 0 ms")];
  // The downlink scores lower, but the server said uplink.
  assert.deepEqual(degradedDirections(interp, events), ["uplink"]);
  assert.equal(participantReason(interp, all, events), "interpreter's uplink: loss 21%");
  const call = { id: "x", booth: "B", slot_start: 0, slot_end: 1, health: "degraded", participants: all, events };
  assert.equal(callReason(call), "interpreter's uplink: loss 21%");
  // Numbers that look fine (the cause is elsewhere, e.g. the voice score): the event's own words.
  const quiet = { ...interp, uplink: { ...interp.uplink, loss_percent: 0 } };
  assert.equal(participantReason(quiet, all, events), "interpreter's uplink: score 2.8, loss 16%, jitter 0 ms, rtt 0 ms");
});

test("without an event the worse direction and its telling metric are named", () => {
  const buyer = p("b1", "buyer", { status: "degraded", score: 3.0, downlink: { score: 2.9, jitter_ms: 48 } });
  assert.deepEqual(degradedDirections(buyer, []), ["downlink"]);
  assert.equal(participantReason(buyer, [buyer], []), "buyer's downlink: jitter 48 ms");
  const quiet = p("o", "office", { status: "degraded", score: 3.1, uplink: { score: 3.1 } });
  assert.equal(participantReason(quiet, [quiet], []), "office's uplink: score 3.1");
});

test("a recovery clears its direction; a lost participant says so", () => {
  const events = [ev(1, "a", "degraded", "uplink", "loss 21%"), ev(2, "a", "degraded", "downlink", "RTT 480 ms"), ev(3, "a", "recovered", "uplink")];
  assert.deepEqual([...activeDegradations("a", events)], [["downlink", "RTT 480 ms"]]);
  assert.deepEqual([...activeDegradations("a", [...events, ev(4, "a", "left")])], []);
  const lost = p("a", "company", { status: "lost", connected: false });
  assert.equal(participantReason(lost, [lost], events), "company's connection lost");
  assert.equal(participantReason(p("g", "office"), [], []), null);
});

test("the call's reason is its worst participant's, with a count of the others", () => {
  const a = p("a", "company", { status: "degraded", score: 3.2, uplink: { score: 3.2, rtt_ms: 420 } });
  const b = p("b", "buyer", { status: "degraded", score: 2.2, uplink: { score: 2.2, loss_percent: 12.4 } });
  const call = { id: "x", booth: "B", slot_start: 0, slot_end: 1, health: "degraded", participants: [a, b, p("c", "interpreter")], events: [] };
  assert.equal(callReason(call), "buyer's uplink: loss 12% (+1 more)");
  assert.equal(callReason({ ...call, participants: [p("c", "interpreter")] }), null);
});

test("metric reasons pick the first that crosses its limit", () => {
  assert.equal(metricReason(dir({ loss_percent: 3.25 })), "loss 3.3%");
  assert.equal(metricReason(dir({ freezes: 2 })), "video froze 2×");
  assert.equal(metricReason(dir({ fps: 4 })), "4 fps");
  assert.equal(metricReason(dir()), null);
});

test("names ending in s get a bare apostrophe", () => {
  const james = p("j", "interpreter", { name: "James", status: "lost" });
  const other = p("k", "interpreter");
  assert.equal(participantReason(james, [james, other], []), "James' connection lost");
});
