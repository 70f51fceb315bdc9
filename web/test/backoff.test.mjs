import assert from "node:assert/strict";
import { test } from "node:test";
import { Backoff, DEFAULT_BACKOFF, shouldReconnect } from "./.build/backoff.js";

test("close codes that must not reconnect", () => {
  assert.equal(shouldReconnect(4001), false); // token refused
  assert.equal(shouldReconnect(4002), false); // replaced
  assert.equal(shouldReconnect(4004), false); // left
  for (const code of [1000, 1001, 1006, 1011, 4003, 4005, 4900]) assert.equal(shouldReconnect(code), true, code);
});

test("delays double from 250 ms up to the cap, then give up after about 30 s", () => {
  const b = new Backoff({ ...DEFAULT_BACKOFF, jitter: 0 });
  let now = 0;
  const delays = [];
  for (;;) {
    const d = b.next(now);
    if (d === null) break;
    delays.push(d);
    now += d + 50; // the attempt itself takes a little time and fails
  }
  assert.deepEqual(delays.slice(0, 6), [250, 500, 1000, 2000, 4000, 4000]);
  const total = delays.reduce((a, d) => a + d + 50, 0);
  assert.ok(total <= 30_000 && total > 25_000, `gave up after ${total} ms`);
});

test("reset starts a new outage", () => {
  const b = new Backoff({ ...DEFAULT_BACKOFF, jitter: 0 });
  assert.equal(b.next(0), 250);
  assert.equal(b.next(300), 500);
  b.reset();
  assert.equal(b.attempts, 0);
  assert.equal(b.next(100_000), 250);
});

test("jitter adds at most the configured fraction", () => {
  const hi = new Backoff({ ...DEFAULT_BACKOFF, jitter: 0.2 }, () => 0.999);
  assert.equal(hi.next(0), 300);
  const lo = new Backoff({ ...DEFAULT_BACKOFF, jitter: 0.2 }, () => 0);
  assert.equal(lo.next(0), 250);
});
