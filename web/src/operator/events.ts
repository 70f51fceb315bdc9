/**
 * A call's event timeline: the last events each snapshot carries plus single `event` frames, merged
 * without duplicates, newest first, capped. Pure.
 */
import type { HealthEvent } from "./model";

/** Events kept per call (snapshots carry the last 50; the timeline may show a little more). */
export const MAX_EVENTS = 200;

export function eventKey(e: HealthEvent): string {
  return `${e.at}|${e.participant}|${e.kind}|${e.direction ?? ""}|${e.detail}`;
}

/** `existing` (newest first) plus `incoming` (any order) → newest first, deduplicated, at most `cap`. */
export function mergeEvents(existing: HealthEvent[], incoming: HealthEvent[], cap = MAX_EVENTS): HealthEvent[] {
  const seen = new Set<string>();
  const all: HealthEvent[] = [];
  for (const e of [...incoming, ...existing]) {
    const key = eventKey(e);
    if (seen.has(key)) continue;
    seen.add(key);
    all.push(e);
  }
  // Stable sort: among equal times, the order of arrival (incoming first) is kept.
  all.sort((a, b) => b.at - a.at);
  return all.slice(0, cap);
}
