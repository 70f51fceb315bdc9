import assert from "node:assert/strict";
import { test } from "node:test";
import { bestMode, classifyMediaError, describeProblem } from "./.build/mediaerrors.js";

test("classifies getUserMedia errors by name", () => {
  const err = (name) => Object.assign(new Error("x"), { name });
  assert.equal(classifyMediaError(err("NotAllowedError")), "denied");
  assert.equal(classifyMediaError(err("NotFoundError")), "not_found");
  assert.equal(classifyMediaError(err("OverconstrainedError")), "not_found");
  assert.equal(classifyMediaError(err("NotReadableError")), "busy");
  assert.equal(classifyMediaError(err("TypeError")), "other");
  assert.equal(classifyMediaError("boom"), "other");
  assert.equal(classifyMediaError(null), "other");
});

test("messages name the device", () => {
  assert.match(describeProblem("camera", "denied"), /camera was blocked/);
  assert.match(describeProblem("microphone", "not_found"), /No microphone/);
});

test("best join mode", () => {
  assert.equal(bestMode(true, true), "full");
  assert.equal(bestMode(true, false), "audio-only");
  assert.equal(bestMode(false, true), "listen-only");
  assert.equal(bestMode(false, false), "listen-only");
});
