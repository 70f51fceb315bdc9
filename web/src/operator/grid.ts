/**
 * The day grid: booths as rows, hours as columns. A call sits in its booth's row from the hour its
 * slot starts, spanning the hours it covers; calls of one booth whose hours overlap (two half-hour
 * slots in one hour, say) go to separate lanes of that row, so no two cells ever overlap. Pure.
 */
import type { Call, CallHealth, CallHealthState, CallState } from "./model";

/** The colour a cell gets: live health when the stream knows the call, else the booking state. */
export type CellHealth = CallHealthState | "upcoming" | "ended";

/** What the grid needs of a call; built from the REST list, the live snapshot, or both. */
export interface GridCall {
  id: string;
  booth: string;
  slotStart: number;
  slotEnd: number;
}

export interface GridPlacement<C extends GridCall = GridCall> {
  call: C;
  /** 0-based lane within the booth's row. */
  lane: number;
  /** 0-based column (index into `hours`). */
  col: number;
  /** Number of hour columns covered (≥ 1). */
  span: number;
}

export interface BoothRow<C extends GridCall = GridCall> {
  booth: string;
  lanes: number;
  placements: GridPlacement<C>[];
}

export interface GridLayout<C extends GridCall = GridCall> {
  /** Hours shown, as offsets from the day's start (0 = midnight … 23). */
  hours: number[];
  booths: BoothRow<C>[];
}

export interface GridOptions {
  /** Hours [first, last) always shown, e.g. the current one; null: only the calls' hours. */
  include: { first: number; last: number } | null;
  /** Fewest columns: a short day is widened, to the right first (the rest of the day), then left. */
  minColumns: number;
  /** Hours shown on a day without calls. */
  emptyDay: { first: number; last: number };
}

export const DEFAULT_GRID: GridOptions = { include: null, minColumns: 8, emptyDay: { first: 9, last: 17 } };

const HOUR = 3600;

/** Booth names in natural order: "Booth 2" before "Booth 10". */
export function compareBooths(a: string, b: string): number {
  return a.localeCompare(b, undefined, { numeric: true, sensitivity: "base" }) || (a < b ? -1 : a > b ? 1 : 0);
}

/**
 * Lays out the calls of one day starting at `dayStart` (unix s; the local midnight) lasting `dayLength`
 * seconds (86 400 except on daylight-saving days). Calls outside the day are left out; calls crossing
 * midnight are clipped to it.
 */
export function layoutGrid<C extends GridCall>(
  calls: C[],
  dayStart: number,
  options: GridOptions = DEFAULT_GRID,
  dayLength = 24 * HOUR,
): GridLayout<C> {
  const dayHours = Math.ceil(dayLength / HOUR);
  const inDay = calls.filter((c) => c.slotStart < dayStart + dayLength && Math.max(c.slotEnd, c.slotStart + 1) > dayStart);

  const spans = inDay.map((c) => {
    const startHour = Math.max(0, Math.floor((c.slotStart - dayStart) / HOUR));
    const end = Math.min(Math.max(c.slotEnd, c.slotStart + 1), dayStart + dayLength);
    const endHour = Math.min(dayHours, Math.max(startHour + 1, Math.ceil((end - dayStart) / HOUR)));
    return { call: c, startHour, endHour };
  });

  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  const ranges = spans.map((s) => ({ first: s.startHour, last: s.endHour }));
  if (options.include !== null) ranges.push(options.include);
  if (ranges.length === 0) ranges.push(options.emptyDay);
  for (const r of ranges) {
    first = Math.min(first, r.first);
    last = Math.max(last, r.last);
  }
  first = Math.max(0, Math.min(first, dayHours - 1));
  last = Math.min(dayHours, Math.max(last, first + 1));
  const wanted = Math.min(options.minColumns, dayHours);
  last = Math.min(dayHours, Math.max(last, first + wanted));
  first = Math.max(0, Math.min(first, last - wanted));
  const hours: number[] = [];
  for (let h = first; h < last; h++) hours.push(h);

  const byBooth = new Map<string, typeof spans>();
  for (const s of spans) {
    const list = byBooth.get(s.call.booth) ?? [];
    list.push(s);
    byBooth.set(s.call.booth, list);
  }

  const booths: BoothRow<C>[] = [...byBooth.keys()].sort(compareBooths).map((booth) => {
    const list = (byBooth.get(booth) ?? []).sort(
      (a, b) => a.call.slotStart - b.call.slotStart || a.call.slotEnd - b.call.slotEnd || (a.call.id < b.call.id ? -1 : 1),
    );
    // Greedy lane assignment: the first lane whose last call ends (in hour columns) before this one starts.
    const laneEnds: number[] = [];
    const placements = list.map((s) => {
      let lane = laneEnds.findIndex((end) => end <= s.startHour);
      if (lane === -1) {
        lane = laneEnds.length;
        laneEnds.push(0);
      }
      laneEnds[lane] = s.endHour;
      return { call: s.call, lane, col: s.startHour - first, span: s.endHour - s.startHour };
    });
    return { booth, lanes: Math.max(1, laneEnds.length), placements };
  });

  return { hours, booths };
}

/** A call as the grid shows it: its booking (when listed) and its live health (when live). */
export type GridEntry = GridCall & { listed: Call | undefined; live: CallHealth | undefined };

/** A cell's colour: the stream's verdict for a live call it reports, else the booking state. */
export function cellHealth(state: CallState | undefined, live: CallHealth | undefined): CellHealth {
  if (live !== undefined) return live.health;
  if (state === "ended") return "ended";
  if (state === "live") return "idle";
  return "upcoming";
}

/**
 * Merges the day's REST list with the live snapshot: every listed call, plus live calls the list
 * does not know yet (booked after it was fetched, or joined with a hand-minted token).
 */
export function gridCalls(
  listed: Call[],
  live: Iterable<CallHealth>,
): GridEntry[] {
  const liveById = new Map<string, CallHealth>();
  for (const c of live) liveById.set(c.id, c);
  const out = listed.map((c): GridEntry => ({
    id: c.id,
    booth: c.booth !== "" ? c.booth : (liveById.get(c.id)?.booth ?? ""),
    slotStart: c.slot_start,
    slotEnd: c.slot_end,
    listed: c,
    live: liveById.get(c.id),
  }));
  const known = new Set(listed.map((c) => c.id));
  for (const c of liveById.values()) {
    if (known.has(c.id)) continue;
    out.push({ id: c.id, booth: c.booth, slotStart: c.slot_start, slotEnd: c.slot_end, listed: undefined, live: c });
  }
  for (const c of out) if (c.booth === "") c.booth = "(no booth)";
  return out;
}
