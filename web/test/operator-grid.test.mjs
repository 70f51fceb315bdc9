import assert from "node:assert/strict";
import { test } from "node:test";
import { cellHealth, compareBooths, gridCalls, layoutGrid } from "./.build/operator/grid.js";

const DAY = 1_767_225_600; // some midnight (unix s)
const H = 3600;
const call = (id, booth, startHour, endHour) => ({ id, booth, slotStart: DAY + startHour * H, slotEnd: DAY + endHour * H });

const OPTS = { include: null, minColumns: 8, emptyDay: { first: 9, last: 17 } };

test("booths in natural order, hours span every call", () => {
  const layout = layoutGrid([call("a", "Booth 10", 9, 10), call("b", "Booth 2", 7.5, 8.5), call("c", "Booth 1", 18, 20)], DAY, OPTS);
  assert.deepEqual(layout.booths.map((b) => b.booth), ["Booth 1", "Booth 2", "Booth 10"]);
  assert.deepEqual(layout.hours, [7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
  const b = layout.booths[1].placements[0];
  assert.deepEqual([b.col, b.span, b.lane], [0, 2, 0]); // 07:30–08:30 covers the 7 and 8 columns
  const c = layout.booths[0].placements[0];
  assert.deepEqual([c.col, c.span], [11, 2]);
});

test("calls of one booth that share an hour go to separate lanes", () => {
  const layout = layoutGrid(
    [call("a", "B", 9, 9.5), call("b", "B", 9.5, 10), call("c", "B", 10, 11), call("d", "B", 9.75, 10.5)],
    DAY,
    OPTS,
  );
  const row = layout.booths[0];
  const lanes = Object.fromEntries(row.placements.map((p) => [p.call.id, [p.lane, p.col, p.span]]));
  assert.deepEqual(lanes, { a: [0, 0, 1], b: [1, 0, 1], d: [2, 0, 2], c: [0, 1, 1] });
  assert.equal(row.lanes, 3);
  // No two placements of a booth share a lane and a column.
  const used = new Set();
  for (const p of row.placements) for (let c = p.col; c < p.col + p.span; c++) {
    const key = `${p.lane}:${c}`;
    assert.ok(!used.has(key), key);
    used.add(key);
  }
});

test("calls outside the day are left out; calls across midnight are clipped", () => {
  const layout = layoutGrid(
    [call("yesterday", "B", -3, -1), call("tomorrow", "B", 25, 26), call("overnight", "B", 23, 25), call("early", "A", -1, 1)],
    DAY,
    OPTS,
  );
  const ids = layout.booths.flatMap((b) => b.placements.map((p) => p.call.id)).sort();
  assert.deepEqual(ids, ["early", "overnight"]);
  assert.equal(layout.hours[0], 0);
  assert.equal(layout.hours[layout.hours.length - 1], 23);
  const overnight = layout.booths.find((b) => b.booth === "B").placements[0];
  assert.deepEqual([overnight.col, overnight.span], [23, 1]);
  const early = layout.booths.find((b) => b.booth === "A").placements[0];
  assert.deepEqual([early.col, early.span], [0, 1]);
});

test("an empty day shows working hours; a short day is widened to the minimum, later hours first", () => {
  const empty = layoutGrid([], DAY, OPTS);
  assert.deepEqual(empty.hours, [9, 10, 11, 12, 13, 14, 15, 16]);
  assert.deepEqual(empty.booths, []);
  const short = layoutGrid([call("a", "B", 10, 11)], DAY, { ...OPTS, include: { first: 12, last: 13 } });
  assert.deepEqual(short.hours, [10, 11, 12, 13, 14, 15, 16, 17]);
  const late = layoutGrid([call("a", "B", 21, 22)], DAY, { ...OPTS, include: { first: 22, last: 23 } });
  assert.deepEqual(late.hours, [16, 17, 18, 19, 20, 21, 22, 23]);
  assert.equal(late.booths[0].placements[0].col, 5);
});

test("booth order is natural and case-insensitive", () => {
  assert.deepEqual(["booth 10", "Booth 9", "Booth 1"].sort(compareBooths), ["Booth 1", "Booth 9", "booth 10"]);
});

test("a cell's health: the stream's verdict first, then the booking state", () => {
  const live = (health) => ({ id: "x", booth: "B", slot_start: 0, slot_end: 1, health, participants: [], events: [] });
  assert.equal(cellHealth("upcoming", live("degraded")), "degraded");
  assert.equal(cellHealth("live", live("good")), "good");
  assert.equal(cellHealth("live", undefined), "idle");
  assert.equal(cellHealth("ended", undefined), "ended");
  assert.equal(cellHealth("upcoming", undefined), "upcoming");
  assert.equal(cellHealth(undefined, undefined), "upcoming");
});

test("live calls the day's list does not know yet are added to the grid", () => {
  const listed = [{ id: "c1", booth: "Booth 1", slot_start: DAY, slot_end: DAY + H, mode: "consecutive", state: "live", booked: true, started_at: null, ended_at: null, parties: [] }];
  const live = [
    { id: "c1", booth: "Booth 1", slot_start: DAY, slot_end: DAY + H, health: "good", participants: [], events: [] },
    { id: "adhoc", booth: "", slot_start: DAY + 2 * H, slot_end: DAY + 3 * H, health: "idle", participants: [], events: [] },
  ];
  const merged = gridCalls(listed, live);
  assert.deepEqual(merged.map((c) => [c.id, c.booth, c.live?.health, c.listed?.id]), [
    ["c1", "Booth 1", "good", "c1"],
    ["adhoc", "(no booth)", "idle", undefined],
  ]);
});
