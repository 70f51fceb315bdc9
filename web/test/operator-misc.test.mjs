// Operator dashboard: parsing, event timeline, routes, key handling, day arithmetic, store, stream.
process.env.TZ = "Europe/Berlin"; // before any Date use: day bounds are local
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseCallDetail, parseCallList, parseStreamMessage } from "./.build/operator/model.js";
import { mergeEvents } from "./.build/operator/events.js";
import { parseRoute, routeHash } from "./.build/operator/router.js";
import { STORAGE_KEY, takeKey } from "./.build/operator/auth.js";
import { clock, dayBounds, kbps, percent, utcDates } from "./.build/operator/format.js";
import { DashboardStore } from "./.build/operator/store.js";

test("stream frames parse tolerantly", () => {
  assert.deepEqual(parseStreamMessage("not json"), { type: "unknown" });
  assert.deepEqual(parseStreamMessage('{"type":"hello"}'), { type: "unknown" });
  assert.deepEqual(parseStreamMessage('{"type":"snapshot"}'), { type: "unknown" });
  const snap = parseStreamMessage(
    JSON.stringify({
      type: "snapshot",
      at: 1000,
      calls: [
        { id: "c1", booth: "Booth 1", slot_start: 10, slot_end: 20, health: "weird", participants: [{ id: "a", status: "degraded", uplink: { score: 2.5, loss_percent: "x" } }, { name: "no id" }], events: [{ at: 5, participant: "a", kind: "degraded", direction: "sideways", detail: "loss 21%" }] },
        { booth: "no id" },
      ],
    }),
  );
  assert.equal(snap.type, "snapshot");
  assert.equal(snap.calls.length, 1);
  const [c] = snap.calls;
  assert.equal(c.health, "idle");
  assert.equal(c.participants.length, 1);
  assert.equal(c.participants[0].name, "a");
  assert.equal(c.participants[0].connected, true);
  assert.equal(c.participants[0].uplink.score, 2.5);
  assert.equal(c.participants[0].uplink.loss_percent, null);
  assert.equal(c.participants[0].downlink.rtt_ms, null);
  assert.equal(c.events[0].direction, null);
  const ev = parseStreamMessage('{"type":"event","call":"c1","event":{"at":7,"participant":"b","kind":"left"}}');
  assert.deepEqual(ev, { type: "event", call: "c1", event: { at: 7, participant: "b", kind: "left", direction: null, detail: "" } });
  // Backlog arrays shorter than t are padded with null; entries without a time are dropped.
  const bl = parseStreamMessage('{"type":"backlog","calls":{"c1":{"a":{"t":[1000,null,3000],"score":[4,3]}}}}');
  assert.deepEqual(bl.calls.c1.a.t, [1000, 3000]);
  assert.deepEqual(bl.calls.c1.a.values.score, [4, null]);
});

test("REST calls parse with defaults", () => {
  const calls = parseCallList({ calls: [{ id: "c1", booth: "B", slot_start: 100, slot_end: 200, state: "live", parties: [{ identity: "i", role: "interpreter", languages: ["de", 3] }] }, { booth: "x" }] });
  assert.equal(calls.length, 1);
  assert.deepEqual(calls[0].parties[0].languages, ["de"]);
  assert.equal(calls[0].parties[0].name, "i");
  assert.deepEqual(parseCallList(null), []);
  const d = parseCallDetail({ id: "c1", live: { participants: [{ id: "p", connected: true, publications: 2 }] } });
  assert.deepEqual(d.live.participants, [{ id: "p", name: "p", role: "", connected: true, publications: 2 }]);
  assert.equal(parseCallDetail({ id: "c2" }).live, null);
});

test("events merge newest first without duplicates, capped", () => {
  const e = (at, kind) => ({ at, participant: "a", kind, direction: null, detail: "" });
  const first = mergeEvents([], [e(1, "joined"), e(3, "degraded"), e(2, "left")]);
  assert.deepEqual(first.map((x) => x.at), [3, 2, 1]);
  const again = mergeEvents(first, [e(3, "degraded"), e(4, "recovered")]);
  assert.deepEqual(again.map((x) => x.kind), ["recovered", "degraded", "left", "joined"]);
  assert.equal(mergeEvents(again, [e(5, "joined")], 3).length, 3);
});

test("routes", () => {
  assert.deepEqual(parseRoute(""), { page: "grid", date: null });
  assert.deepEqual(parseRoute("#/day/2026-03-29"), { page: "grid", date: "2026-03-29" });
  assert.deepEqual(parseRoute("#/day/garbage"), { page: "grid", date: null });
  assert.deepEqual(parseRoute("#/call/c%2F1"), { page: "call", id: "c/1" });
  assert.equal(routeHash({ page: "call", id: "c/1" }), "#/call/c%2F1");
  assert.equal(routeHash({ page: "grid", date: null }), "#/");
});

test("the key moves from the URL into session storage", () => {
  const store = new Map();
  const storage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v), removeItem: (k) => store.delete(k) };
  assert.deepEqual(takeKey("http://h/operator?key=s3cret&x=1#/call/c1", storage), { key: "s3cret", cleanUrl: "/operator?x=1#/call/c1" });
  assert.equal(store.get(STORAGE_KEY), "s3cret");
  assert.deepEqual(takeKey("http://h/operator#/", storage), { key: "s3cret", cleanUrl: null });
  storage.removeItem(STORAGE_KEY);
  assert.deepEqual(takeKey("http://h/operator", storage), { key: null, cleanUrl: null });
});

test("a local day maps to the UTC days the API is asked for, also across DST", () => {
  const { start, end } = dayBounds("2026-06-10");
  assert.equal(end - start, 86_400);
  assert.equal(clock(start), "00:00");
  assert.deepEqual(utcDates(start, end), ["2026-06-09", "2026-06-10"]); // Berlin is UTC+2 in June
  const dst = dayBounds("2026-03-29"); // clocks go forward: 23 hours
  assert.equal(dst.end - dst.start, 23 * 3600);
  assert.equal(kbps(1234), "1.2 Mb/s");
  assert.equal(kbps(null), "–");
  assert.equal(percent(0.44), "0.4%");
});

test("the store tracks live calls and their timelines", () => {
  const store = new DashboardStore();
  const snap = (at, calls) => ({ type: "snapshot", at, calls });
  const call = (id, events = []) => ({ id, booth: "B", slot_start: 0, slot_end: 1, health: "good", participants: [{ id: "a", name: "a", role: "x", connected: true, score: 4, status: "good", uplink: {}, downlink: {} }], events });
  let r = store.apply(snap(1000, [call("c1", [{ at: 900, participant: "a", kind: "joined", direction: null, detail: "" }])]));
  assert.deepEqual([r.appeared, r.vanished, r.eventsChanged], [["c1"], [], ["c1"]]);
  r = store.apply({ type: "event", call: "c1", event: { at: 1500, participant: "a", kind: "left", direction: null, detail: "" } });
  assert.deepEqual(r.eventsChanged, ["c1"]);
  r = store.apply(snap(2000, [call("c2")]));
  assert.deepEqual([r.appeared, r.vanished], [["c2"], ["c1"]]);
  assert.deepEqual(store.eventsOf("c1").map((e) => e.kind), ["left", "joined"]);
  // A stale snapshot is ignored.
  store.apply(snap(1500, [call("c1")]));
  assert.deepEqual([...store.live.keys()], ["c2"]);
});

/** A stand-in for the browser's WebSocket: the test plays the server. */
class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.closed = false;
    FakeSocket.all.push(this);
  }
  close() {
    this.closed = true;
  }
  send() {}
  frame(obj) {
    this.onmessage?.({ data: JSON.stringify(obj) });
  }
  drop() {
    this.onclose?.({ code: 1006, reason: "" });
  }
}

test("the stream reconnects by itself after a drop and after silence", async (t) => {
  globalThis.WebSocket = FakeSocket;
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"] });
  const { HealthStream, streamUrl } = await import("./.build/operator/stream.js");
  assert.equal(streamUrl({ protocol: "https:", host: "x:1" }, "k y"), "wss://x:1/v1/health/stream?api_key=k%20y");
  const states = [];
  const frames = [];
  const s = new HealthStream({
    url: "ws://x/v1/health/stream?api_key=k",
    onMessage: (m) => frames.push(m.type),
    onState: (st) => states.push(st),
    backoff: { initialMs: 500, maxDelayMs: 5000, giveUpAfterMs: Infinity, jitter: 0 },
  });
  s.start();
  assert.equal(FakeSocket.all.length, 1);
  FakeSocket.all[0].frame({ type: "snapshot", at: 1, calls: [] });
  assert.deepEqual(states, ["live"]);
  FakeSocket.all[0].drop();
  assert.deepEqual(states, ["live", "reconnecting"]);
  t.mock.timers.tick(499);
  assert.equal(FakeSocket.all.length, 1);
  t.mock.timers.tick(1);
  assert.equal(FakeSocket.all.length, 2);
  // The second socket fails too: the next delay doubles.
  FakeSocket.all[1].drop();
  t.mock.timers.tick(999);
  assert.equal(FakeSocket.all.length, 2);
  t.mock.timers.tick(1);
  assert.equal(FakeSocket.all.length, 3);
  FakeSocket.all[2].frame({ type: "backlog", calls: {} });
  assert.equal(s.state, "live");
  // Silence: after 5 s without a frame the socket is dropped and a new one opened (backoff was reset).
  t.mock.timers.tick(6000);
  assert.ok(FakeSocket.all[2].closed);
  assert.equal(s.state, "reconnecting");
  t.mock.timers.tick(500);
  assert.equal(FakeSocket.all.length, 4);
  s.stop();
  assert.ok(FakeSocket.all[3].closed);
  t.mock.timers.tick(60_000);
  assert.equal(FakeSocket.all.length, 4);
  assert.deepEqual(frames, ["snapshot", "backlog"]);
});
