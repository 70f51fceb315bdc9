import assert from "node:assert/strict";
import { test } from "node:test";
import { readPageParams } from "./.build/pageparams.js";

test("same-origin signaling URL by default", () => {
  assert.deepEqual(readPageParams({ protocol: "http:", host: "127.0.0.1:7880", search: "?token=abc" }), {
    token: "abc",
    signalUrl: "ws://127.0.0.1:7880/v1/signal",
    signalOverrideRejected: false,
  });
  assert.equal(readPageParams({ protocol: "https:", host: "booth.example", search: "" }).signalUrl, "wss://booth.example/v1/signal");
  assert.equal(readPageParams({ protocol: "https:", host: "booth.example", search: "" }).token, null);
});

test("?signal= overrides with a ws URL only", () => {
  const ok = readPageParams({ protocol: "http:", host: "localhost:8000", search: "?token=t&signal=ws%3A%2F%2F127.0.0.1%3A9000%2Fv1%2Fsignal" });
  assert.equal(ok.signalUrl, "ws://127.0.0.1:9000/v1/signal");
  const bad = readPageParams({ protocol: "http:", host: "localhost:8000", search: "?signal=http://evil/x" });
  assert.equal(bad.signalUrl, "ws://localhost:8000/v1/signal");
  assert.equal(bad.signalOverrideRejected, true);
});
