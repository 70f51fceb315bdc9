import assert from "node:assert/strict";
import { test } from "node:test";
import { SpeakerDetector } from "./.build/speaker.js";

const opts = { threshold: 0.05, holdMs: 1000, switchFactor: 1.5, smoothing: 1 };
const m = (o) => new Map(Object.entries(o));

test("nobody speaks in silence", () => {
  const d = new SpeakerDetector(opts);
  assert.equal(d.update(m({ a: 0, b: 0.01 }), 0), null);
});

test("the loudest above the threshold speaks, and keeps it through a short pause", () => {
  const d = new SpeakerDetector(opts);
  assert.equal(d.update(m({ a: 0.3, b: 0.1 }), 0), "a");
  assert.equal(d.update(m({ a: 0.0, b: 0.0 }), 500), "a");
  assert.equal(d.update(m({ a: 0.0, b: 0.0 }), 1600), null);
});

test("a challenger must be clearly louder while the speaker still talks", () => {
  const d = new SpeakerDetector(opts);
  d.update(m({ a: 0.3, b: 0.0 }), 0);
  assert.equal(d.update(m({ a: 0.3, b: 0.4 }), 100), "a");
  assert.equal(d.update(m({ a: 0.3, b: 0.5 }), 200), "b");
  // a quiet speaker is replaced by anyone above the threshold
  assert.equal(d.update(m({ a: 0.1, b: 0.0 }), 300), "a");
});

test("a speaker who leaves is dropped", () => {
  const d = new SpeakerDetector(opts);
  d.update(m({ a: 0.3 }), 0);
  assert.equal(d.update(m({ b: 0.0 }), 100), null);
});

test("smoothing ignores a single click", () => {
  const d = new SpeakerDetector({ ...opts, smoothing: 0.2 });
  assert.equal(d.update(m({ a: 0.2 }), 0), null); // 0.04 < 0.05
  assert.equal(d.update(m({ a: 0.2 }), 100), "a"); // 0.072
});
