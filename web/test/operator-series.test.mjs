import assert from "node:assert/strict";
import { test } from "node:test";
import { parseStreamMessage } from "./.build/operator/model.js";
import { SeriesStore, align, mergeSeries, normalize, quantize, sampleOf, trimSeries } from "./.build/operator/series.js";

const METRICS = ["uplink_kbps", "downlink_kbps", "loss_percent", "jitter_ms", "rtt_ms", "score"];

/** A series with `t` and the same value list for every metric unless given. */
function series(t, values = {}) {
  const v = {};
  for (const m of METRICS) v[m] = values[m] ?? t.map(() => null);
  return { t, values: v };
}

function participant(id, up = {}, down = {}, extra = {}) {
  const dir = (d) => ({ score: null, bitrate_kbps: null, loss_percent: null, jitter_ms: null, rtt_ms: null, nacks: null, plis: null, fps: null, freezes: null, audio_level: null, ...d });
  return { id, name: id, role: id, connected: true, score: 4.2, status: "good", uplink: dir(up), downlink: dir(down), ...extra };
}

test("timestamps round to whole seconds so participants line up", () => {
  assert.equal(quantize(1_000_499), 1_000_000);
  assert.equal(quantize(1_000_500), 1_001_000);
  const n = normalize(series([3_100, 1_020, 2_000, 2_900], { score: [3, 1, 2, 4] }));
  // 2_900 and 3_100 both round to 3_000: the later one in the input wins.
  assert.deepEqual(n.t, [1_000, 2_000, 3_000]);
  assert.deepEqual(n.values.score, [1, 2, 4]);
});

test("a sample's loss, jitter and RTT are the worse direction; bitrate stays per direction", () => {
  const s = sampleOf(participant("a", { bitrate_kbps: 800, loss_percent: 21, jitter_ms: 5, rtt_ms: null }, { bitrate_kbps: 1500, loss_percent: 0.5, jitter_ms: 9, rtt_ms: 40 }));
  assert.deepEqual(s, { uplink_kbps: 800, downlink_kbps: 1500, loss_percent: 21, jitter_ms: 9, rtt_ms: 40, score: 4.2 });
  const empty = sampleOf(participant("b"));
  assert.equal(empty.loss_percent, null);
});

test("merging keeps time order, and a null never overwrites a value", () => {
  const a = series([1000, 2000, 4000], { score: [1, 2, 4] });
  const b = series([2000, 3000, 5000], { score: [null, 3, 5] });
  const m = mergeSeries(a, b);
  assert.deepEqual(m.t, [1000, 2000, 3000, 4000, 5000]);
  assert.deepEqual(m.values.score, [1, 2, 3, 4, 5]);
  const c = mergeSeries(a, series([2000], { score: [9] }));
  assert.deepEqual(c.values.score, [1, 9, 4]);
});

test("trimming drops samples older than the window start", () => {
  const s = series([1000, 2000, 3000], { score: [1, 2, 3] });
  trimSeries(s, 2000);
  assert.deepEqual(s.t, [2000, 3000]);
  assert.deepEqual(s.values.score, [2, 3]);
  trimSeries(s, 10_000);
  assert.deepEqual(s.t, []);
  assert.deepEqual(s.values.uplink_kbps, []);
});

test("aligning fills null where a participant has no sample", () => {
  const d = align([series([1000, 2000], { rtt_ms: [10, 20] }), series([2000, 3000], { rtt_ms: [5, 6] }), undefined], "rtt_ms");
  assert.deepEqual(d.x, [1000, 2000, 3000]);
  assert.deepEqual(d.ys, [[10, 20, null], [null, 5, 6], [null, null, null]]);
});

test("the store keeps a sliding window on the server's clock", () => {
  const store = new SeriesStore(10_000);
  const t0 = 1_700_000_000_000;
  for (let i = 0; i < 30; i++) {
    store.addSnapshot(t0 + i * 1000, [
      { id: "c1", participants: [participant("a", { bitrate_kbps: i }), participant("b", { bitrate_kbps: 100 + i })] },
    ]);
  }
  assert.equal(store.latest, t0 + 29_000);
  const a = store.get("c1", "a");
  assert.equal(a.t[0], t0 + 19_000);
  assert.equal(a.t.length, 11);
  const d = store.aligned("c1", "uplink_kbps", ["a", "b"]);
  assert.equal(d.x.length, 11);
  assert.deepEqual(d.ys[1].slice(-2), [128, 129]);
  // A call that stops appearing is dropped once its samples age out.
  store.addSnapshot(t0 + 45_000, [{ id: "c2", participants: [participant("z")] }]);
  assert.deepEqual(store.callIds(), ["c2"]);
});

test("a backlog merges with live samples already held, without duplicates", () => {
  const store = new SeriesStore();
  const t0 = 1_700_000_000_000;
  // Live samples arrived first (e.g. after a reconnect the backlog overlaps them).
  store.addSnapshot(t0 + 3000, [{ id: "c1", participants: [participant("a", { bitrate_kbps: 30 })] }]);
  store.addSnapshot(t0 + 4000, [{ id: "c1", participants: [participant("a", { bitrate_kbps: 40 })] }]);
  const frame = JSON.stringify({
    type: "backlog",
    calls: {
      c1: {
        a: { t: [t0, t0 + 1000, t0 + 2000, t0 + 3010], uplink_kbps: [0, 10, 20, 31], downlink_kbps: [1, 1, 1, 1], loss_percent: [0, null, 0, 0], jitter_ms: [1, 1, 1, 1], rtt_ms: [9, 9, 9, 9], score: [4, 4, 4, 4] },
        b: { t: [t0 + 1000, t0 + 2000], uplink_kbps: [5, 6] },
      },
    },
  });
  const msg = parseStreamMessage(frame);
  assert.equal(msg.type, "backlog");
  store.mergeBacklog(msg.calls);
  const a = store.get("c1", "a");
  assert.deepEqual(a.t, [t0, t0 + 1000, t0 + 2000, t0 + 3000, t0 + 4000]);
  assert.deepEqual(a.values.uplink_kbps, [0, 10, 20, 31, 40]);
  assert.deepEqual(a.values.loss_percent, [0, null, 0, 0, null]);
  // Metrics the backlog leaves out are null, not missing.
  assert.deepEqual(store.get("c1", "b").values.rtt_ms, [null, null]);
  assert.deepEqual(store.participantIds("c1"), ["a", "b"]);
  // The same backlog again (another reconnect) changes nothing.
  store.mergeBacklog(msg.calls);
  assert.equal(store.get("c1", "a").t.length, 5);
});

test("an old backlog outside the window is trimmed away at once", () => {
  const store = new SeriesStore(5000);
  const t0 = 1_700_000_000_000;
  store.addSnapshot(t0 + 60_000, [{ id: "c1", participants: [participant("a")] }]);
  store.mergeBacklog({ c1: { a: series([t0, t0 + 1000]) }, old: { x: series([t0]) } });
  assert.deepEqual(store.get("c1", "a").t, [t0 + 60_000]);
  assert.deepEqual(store.callIds(), ["c1"]);
});
