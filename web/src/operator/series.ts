/**
 * Recent per-participant samples of every live call, for the charts: filled from the stream's
 * backlog (on every (re)connect) and from each 1 s snapshot, trimmed to a time window measured on
 * the server's clock (the newest sample), never on the browser's. Pure: no DOM.
 *
 * Timestamps are rounded to whole seconds so that samples of different participants taken at the
 * same tick line up on one x value (uPlot draws a gap at every null, so misaligned x values would
 * break every line into dots).
 */
import { METRICS } from "./model";
import type { Backlog, CallHealth, Metric, ParticipantHealth, SampleSeries } from "./model";

/** How much history the charts keep and show. */
export const WINDOW_MS = 5 * 60_000;

export type Sample = Record<Metric, number | null>;

export function quantize(tMs: number): number {
  return Math.round(tMs / 1000) * 1000;
}

function maxOf(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.max(a, b);
}

/**
 * The chart values of one participant in one snapshot. Loss, jitter and RTT are per direction in a
 * snapshot but single series in the backlog: the charts show the worse of the two directions (the
 * participant table shows each direction apart).
 */
export function sampleOf(p: ParticipantHealth): Sample {
  return {
    uplink_kbps: p.uplink.bitrate_kbps,
    downlink_kbps: p.downlink.bitrate_kbps,
    loss_percent: maxOf(p.uplink.loss_percent, p.downlink.loss_percent),
    jitter_ms: maxOf(p.uplink.jitter_ms, p.downlink.jitter_ms),
    rtt_ms: maxOf(p.uplink.rtt_ms, p.downlink.rtt_ms),
    score: p.score,
  };
}

function emptySeries(): SampleSeries {
  const values = {} as Record<Metric, (number | null)[]>;
  for (const m of METRICS) values[m] = [];
  return { t: [], values };
}

/** Sorts a series by time, rounds its timestamps, and keeps the last of several samples per second. */
export function normalize(s: SampleSeries): SampleSeries {
  const order = s.t.map((t, i) => ({ t: quantize(t), i }));
  order.sort((a, b) => a.t - b.t || a.i - b.i);
  const out = emptySeries();
  for (const { t, i } of order) {
    const last = out.t.length - 1;
    const same = last >= 0 && out.t[last] === t;
    if (!same) out.t.push(t);
    for (const m of METRICS) {
      const v = s.values[m][i] ?? null;
      if (!same) out.values[m].push(v);
      else if (v !== null) out.values[m][last] = v;
    }
  }
  return out;
}

/**
 * Merges two time-sorted series (`incoming` normalized). At a timestamp both hold, a value from
 * `incoming` wins unless it is null. Linear in the total length.
 */
export function mergeSeries(existing: SampleSeries, incoming: SampleSeries): SampleSeries {
  const out = emptySeries();
  let i = 0;
  let j = 0;
  const push = (from: SampleSeries, k: number) => {
    out.t.push(from.t[k] as number);
    for (const m of METRICS) out.values[m].push(from.values[m][k] ?? null);
  };
  while (i < existing.t.length || j < incoming.t.length) {
    const a = existing.t[i];
    const b = incoming.t[j];
    if (b === undefined || (a !== undefined && a < b)) {
      push(existing, i++);
    } else if (a === undefined || b < a) {
      push(incoming, j++);
    } else {
      out.t.push(a);
      for (const m of METRICS) {
        const v = incoming.values[m][j] ?? null;
        out.values[m].push(v !== null ? v : (existing.values[m][i] ?? null));
      }
      i++;
      j++;
    }
  }
  return out;
}

/** Drops samples older than `fromMs` (in place). */
export function trimSeries(s: SampleSeries, fromMs: number): void {
  let cut = 0;
  while (cut < s.t.length && (s.t[cut] as number) < fromMs) cut++;
  if (cut === 0) return;
  s.t.splice(0, cut);
  for (const m of METRICS) s.values[m].splice(0, cut);
}

/** x values (ms) shared by all participants, and one y array per participant (null = no sample). */
export interface AlignedData {
  x: number[];
  ys: (number | null)[][];
}

/** Aligns several participants' samples of one metric on the union of their timestamps. */
export function align(series: (SampleSeries | undefined)[], metric: Metric): AlignedData {
  const xs = new Set<number>();
  for (const s of series) if (s !== undefined) for (const t of s.t) xs.add(t);
  const x = [...xs].sort((a, b) => a - b);
  const ys = series.map((s) => {
    const y: (number | null)[] = new Array<number | null>(x.length).fill(null);
    if (s === undefined) return y;
    let k = 0;
    for (let i = 0; i < x.length && k < s.t.length; i++) {
      if (x[i] === s.t[k]) {
        y[i] = s.values[metric][k] ?? null;
        k++;
      }
    }
    return y;
  });
  return { x, ys };
}

export class SeriesStore {
  /** callId → participantId → samples (insertion order of participants is kept: it fixes colours). */
  private readonly calls = new Map<string, Map<string, SampleSeries>>();
  /** Newest sample time seen (unix ms, server clock); the window ends here. */
  latest = 0;

  constructor(readonly windowMs: number = WINDOW_MS) {}

  private series(callId: string, pid: string): SampleSeries {
    let call = this.calls.get(callId);
    if (call === undefined) {
      call = new Map();
      this.calls.set(callId, call);
    }
    let s = call.get(pid);
    if (s === undefined) {
      s = emptySeries();
      call.set(pid, s);
    }
    return s;
  }

  /** Merges a backlog (sent on every connect) with what is held, then trims. */
  mergeBacklog(backlog: Backlog): void {
    for (const [callId, participants] of Object.entries(backlog)) {
      for (const [pid, raw] of Object.entries(participants)) {
        const incoming = normalize(raw);
        if (incoming.t.length === 0) continue;
        const merged = mergeSeries(this.series(callId, pid), incoming);
        this.calls.get(callId)?.set(pid, merged);
        this.latest = Math.max(this.latest, merged.t[merged.t.length - 1] as number);
      }
    }
    this.trim();
  }

  /** Adds one sample; appending in time order is the cheap common case. */
  addSample(callId: string, pid: string, tMs: number, sample: Sample): void {
    const t = quantize(tMs);
    const s = this.series(callId, pid);
    const last = s.t[s.t.length - 1];
    if (last === undefined || t > last) {
      s.t.push(t);
      for (const m of METRICS) s.values[m].push(sample[m]);
    } else {
      const one = emptySeries();
      one.t.push(t);
      for (const m of METRICS) one.values[m].push(sample[m]);
      this.calls.get(callId)?.set(pid, mergeSeries(s, one));
    }
    this.latest = Math.max(this.latest, t);
  }

  /** Records every participant of every call in a snapshot at its time, then trims. */
  addSnapshot(atMs: number, calls: CallHealth[]): void {
    for (const call of calls) {
      for (const p of call.participants) this.addSample(call.id, p.id, atMs, sampleOf(p));
    }
    this.latest = Math.max(this.latest, quantize(atMs));
    this.trim();
  }

  /** Drops samples that fell out of the window, and participants and calls left with none. */
  trim(nowMs: number = this.latest): void {
    const from = nowMs - this.windowMs;
    for (const [callId, call] of this.calls) {
      for (const [pid, s] of call) {
        trimSeries(s, from);
        if (s.t.length === 0) call.delete(pid);
      }
      if (call.size === 0) this.calls.delete(callId);
    }
  }

  callIds(): string[] {
    return [...this.calls.keys()];
  }

  /** Participants with samples in this call, in the order they first appeared. */
  participantIds(callId: string): string[] {
    return [...(this.calls.get(callId)?.keys() ?? [])];
  }

  get(callId: string, pid: string): SampleSeries | undefined {
    return this.calls.get(callId)?.get(pid);
  }

  /** One metric of the given participants, aligned for a chart. */
  aligned(callId: string, metric: Metric, pids: string[]): AlignedData {
    return align(
      pids.map((pid) => this.get(callId, pid)),
      metric,
    );
  }
}
