import assert from "node:assert/strict";
import { test } from "node:test";
import { GAIN_EPSILON, UNROUTED_DEFAULT_GAIN, clampGain, gainTargets, planGain, rampValueAt } from "./.build/mix.js";

const routing = (routes, ramp_ms = 300) => ({
  type: "routing",
  participant: "buyer-1",
  mode: "simultaneous",
  ramp_ms,
  routes: routes.map(([publication, gain, channel = "floor"]) => ({
    publication,
    participant: `owner-of-${publication}`,
    channel,
    gain,
    priority: channel === "floor" ? "floor" : "interpretation",
  })),
  summary: { listening: "en", live_channel: null, floor_gain: 1 },
});

// Routing message → per-publication gain targets.
const targetCases = [
  {
    name: "listener with live interpretation: floor ducked, interpretation full, unrouted silent",
    routing: routing([["PB_1", 0.2], ["PB_3", 1, "en"], ["PB_7", 0.2]]),
    pubs: ["PB_1", "PB_3", "PB_5", "PB_7"],
    want: { PB_1: 0.2, PB_3: 1, PB_5: 0, PB_7: 0.2 },
  },
  {
    name: "no interpreter in the listener's language: floor at full level, interpreters unrouted",
    routing: routing([["PB_1", 1], ["PB_7", 1]]),
    pubs: ["PB_1", "PB_3", "PB_7"],
    want: { PB_1: 1, PB_3: 0, PB_7: 1 },
  },
  { name: "operator: nothing routed, everything silent", routing: routing([]), pubs: ["PB_1", "PB_3"], want: { PB_1: 0, PB_3: 0 } },
  { name: "before any routing message: everything that arrives plays", routing: null, pubs: ["PB_1", "PB_3"], want: { PB_1: UNROUTED_DEFAULT_GAIN, PB_3: UNROUTED_DEFAULT_GAIN } },
  { name: "routes for publications without a track yet are ignored", routing: routing([["PB_9", 1]]), pubs: ["PB_1"], want: { PB_1: 0 } },
  { name: "out-of-range gains are clamped", routing: routing([["PB_1", 1.5], ["PB_2", -0.5]]), pubs: ["PB_1", "PB_2"], want: { PB_1: 1, PB_2: 0 } },
];
for (const c of targetCases) {
  test(`gainTargets: ${c.name}`, () => {
    assert.deepEqual(Object.fromEntries(gainTargets(c.routing, c.pubs)), c.want);
  });
}

test("clampGain: NaN and infinities are silent or clamped", () => {
  assert.equal(clampGain(Number.NaN), 0);
  assert.equal(clampGain(Infinity), 0);
  assert.equal(clampGain(0.35), 0.35);
});

// Ramp scheduling decisions: (last scheduled target, new target, ramp_ms) → step.
const planCases = [
  { name: "new node fades in from silence over the ramp", args: [null, 1, 300], want: { kind: "ramp", from: 0, to: 1, seconds: 0.3 } },
  { name: "new node ducked from the start fades in to the duck gain", args: [null, 0.2, 300], want: { kind: "ramp", from: 0, to: 0.2, seconds: 0.3 } },
  { name: "new unrouted node is simply silent", args: [null, 0, 300], want: { kind: "set", to: 0 } },
  { name: "new node without a ramp is set", args: [null, 1, 0], want: { kind: "set", to: 1 } },
  { name: "same target again keeps a running ramp", args: [0.2, 0.2, 300], want: { kind: "keep" } },
  { name: "a difference below epsilon is the same target", args: [0.2, 0.2 + GAIN_EPSILON / 2, 300], want: { kind: "keep" } },
  { name: "duck: ramp from wherever the gain is to 0.2", args: [1, 0.2, 300], want: { kind: "ramp", from: null, to: 0.2, seconds: 0.3 } },
  { name: "unduck: back to full level", args: [0.2, 1, 300], want: { kind: "ramp", from: null, to: 1, seconds: 0.3 } },
  { name: "route withdrawn: ramp down to 0", args: [1, 0, 300], want: { kind: "ramp", from: null, to: 0, seconds: 0.3 } },
  { name: "ramp_ms 0 jumps", args: [1, 0.2, 0], want: { kind: "set", to: 0.2 } },
  { name: "negative or NaN ramp jumps", args: [1, 0.2, Number.NaN], want: { kind: "set", to: 0.2 } },
  { name: "target clamped", args: [0.5, 3, 100], want: { kind: "ramp", from: null, to: 1, seconds: 0.1 } },
];
for (const c of planCases) {
  test(`planGain: ${c.name}`, () => {
    assert.deepEqual(planGain(...c.args), c.want);
  });
}

test("a quick back-and-forth never restarts from the old end point", () => {
  // Ducking starts (1 → 0.2), then the interpreter leaves mid-ramp: the new ramp starts from the
  // node's current value (from: null), not from 0.2 or 1.
  assert.deepEqual(planGain(1, 0.2, 300), { kind: "ramp", from: null, to: 0.2, seconds: 0.3 });
  assert.deepEqual(planGain(0.2, 1, 300), { kind: "ramp", from: null, to: 1, seconds: 0.3 });
});

test("rampValueAt follows linearRampToValueAtTime", () => {
  assert.equal(rampValueAt(1, 0.2, 10, 0.3, 9), 1);
  assert.equal(rampValueAt(1, 0.2, 10, 0.3, 10), 1);
  assert.ok(Math.abs(rampValueAt(1, 0.2, 10, 0.3, 10.15) - 0.6) < 1e-9);
  assert.ok(Math.abs(rampValueAt(1, 0.2, 0, 300, 75) - 0.8) < 1e-9);
  assert.equal(rampValueAt(1, 0.2, 10, 0.3, 10.3), 0.2);
  assert.equal(rampValueAt(1, 0.2, 10, 0.3, 99), 0.2);
  assert.equal(rampValueAt(0.2, 1, 0, 0, 0), 1);
});
