/**
 * Short human reasons for a degraded call or participant, e.g. "interpreter's uplink: loss 21%".
 * The server's "degraded" events say which direction (when there is none, e.g. the event scrolled
 * out of the last 50, the lower-scoring direction is taken); the words come from that direction's
 * current numbers, so they stay fresh, and fall back to the event's own detail. Pure.
 */
import type { CallHealth, Direction, DirectionHealth, HealthEvent, ParticipantHealth } from "./model";

/** Rough limits above which a metric is worth naming (only used when no event names the cause). */
export const LIMITS = { lossPercent: 2, jitterMs: 30, rttMs: 300, fps: 10 };

interface Named {
  id: string;
  name: string;
  role: string;
}

/** How to call a participant in a sentence: its role when no one else in the call has it, else its name. */
export function participantLabel(p: Named, all: Named[]): string {
  const sameRole = all.filter((o) => o.role === p.role).length;
  if (p.role !== "" && sameRole <= 1) return p.role;
  return p.name !== "" ? p.name : p.id;
}

export function possessive(label: string): string {
  return /s$/i.test(label) ? `${label}'` : `${label}'s`;
}

/**
 * Degradations still in force for one participant according to its events: direction → detail.
 * A "recovered" clears its direction (or all, without one); "left" clears all.
 */
export function activeDegradations(pid: string, events: HealthEvent[]): Map<Direction | "both", string> {
  const active = new Map<Direction | "both", string>();
  const mine = events.filter((e) => e.participant === pid).sort((a, b) => a.at - b.at);
  for (const e of mine) {
    if (e.kind === "degraded") {
      active.set(e.direction ?? "both", e.detail);
    } else if (e.kind === "recovered") {
      if (e.direction === null) active.clear();
      else {
        active.delete(e.direction);
        active.delete("both");
      }
    } else if (e.kind === "left") {
      active.clear();
    }
  }
  return active;
}

/** The most telling number of a direction, as a few words ("loss 21%"), or null when all look fine. */
export function metricReason(d: DirectionHealth): string | null {
  if (d.loss_percent !== null && d.loss_percent >= LIMITS.lossPercent) return `loss ${formatPercent(d.loss_percent)}`;
  if (d.freezes !== null && d.freezes > 0) return d.freezes === 1 ? "video froze" : `video froze ${d.freezes}×`;
  if (d.jitter_ms !== null && d.jitter_ms >= LIMITS.jitterMs) return `jitter ${Math.round(d.jitter_ms)} ms`;
  if (d.rtt_ms !== null && d.rtt_ms >= LIMITS.rttMs) return `RTT ${Math.round(d.rtt_ms)} ms`;
  if (d.fps !== null && d.fps > 0 && d.fps < LIMITS.fps) return `${Math.round(d.fps)} fps`;
  return null;
}

function formatPercent(v: number): string {
  return v >= 10 ? `${Math.round(v)}%` : `${Math.round(v * 10) / 10}%`;
}

function worseDirection(p: ParticipantHealth): Direction | null {
  const up = p.uplink.score;
  const down = p.downlink.score;
  if (up === null && down === null) {
    if (metricReason(p.uplink) !== null) return "uplink";
    if (metricReason(p.downlink) !== null) return "downlink";
    return null;
  }
  if (down === null || (up !== null && up <= down)) return "uplink";
  return "downlink";
}

/**
 * The directions to mark as degraded for a participant: those its events say are degraded; else,
 * for a participant the server calls degraded, the one with the lower score.
 */
export function degradedDirections(p: ParticipantHealth, events: HealthEvent[]): Direction[] {
  if (p.status !== "degraded") return [];
  const active = activeDegradations(p.id, events);
  if (active.has("both")) return ["uplink", "downlink"];
  const dirs = (["uplink", "downlink"] as const).filter((d) => active.has(d));
  if (dirs.length > 0) return dirs;
  const worse = worseDirection(p);
  return worse === null ? [] : [worse];
}

/** Why this participant is not fine, or null when it is. */
export function participantReason(p: ParticipantHealth, all: Named[], events: HealthEvent[]): string | null {
  const label = participantLabel(p, all);
  if (p.status === "lost") return `${possessive(label)} connection lost`;
  if (p.status !== "degraded") return null;
  const active = activeDegradations(p.id, events);
  const dirs = degradedDirections(p, events);
  const dir = dirs.length === 2 ? null : (dirs[0] ?? null);
  const where = dir === null ? (dirs.length === 2 ? "uplink and downlink" : "connection") : dir;
  const detail =
    (dir !== null ? metricReason(p[dir]) : (metricReason(p.uplink) ?? metricReason(p.downlink))) ??
    (dir !== null ? active.get(dir) : active.get("both")) ??
    [...active.values()][0] ??
    (p.score !== null ? `score ${p.score.toFixed(1)}` : "quality low");
  return detail !== "" ? `${possessive(label)} ${where}: ${detail}` : `${possessive(label)} ${where} degraded`;
}

function severity(p: ParticipantHealth): number {
  // Lower is worse: a lost participant first, then the lowest score.
  if (p.status === "lost") return -1;
  return p.score ?? 5;
}

/** The call's headline reason: its worst participant's, plus how many others are affected. */
export function callReason(call: CallHealth): string | null {
  const bad = call.participants.filter((p) => p.status !== "good").sort((a, b) => severity(a) - severity(b));
  const worst = bad[0];
  if (worst === undefined) return null;
  const text = participantReason(worst, call.participants, call.events);
  if (text === null) return null;
  return bad.length > 1 ? `${text} (+${bad.length - 1} more)` : text;
}
