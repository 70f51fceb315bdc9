/**
 * Everything the stream has said: the latest snapshot of each live call, each call's event
 * timeline, and the chart series. Pure: the views read it after each {@link DashboardStore.apply}.
 */
import { mergeEvents } from "./events";
import type { CallHealth, HealthEvent, StreamMessage } from "./model";
import { SeriesStore, WINDOW_MS } from "./series";

export interface ApplyResult {
  kind: "backlog" | "snapshot" | "event" | "unknown";
  /** Calls that appeared in this snapshot but were not in the previous one. */
  appeared: string[];
  /** Calls that were in the previous snapshot but are not in this one. */
  vanished: string[];
  /** Calls whose timeline changed. */
  eventsChanged: string[];
}

export class DashboardStore {
  readonly series: SeriesStore;
  /** The latest snapshot's calls by id. */
  live = new Map<string, CallHealth>();
  /** Time of the latest snapshot (unix ms, server clock); 0 before the first. */
  snapshotAt = 0;
  private readonly events = new Map<string, HealthEvent[]>();

  constructor(windowMs = WINDOW_MS) {
    this.series = new SeriesStore(windowMs);
  }

  eventsOf(callId: string): HealthEvent[] {
    return this.events.get(callId) ?? [];
  }

  private addEvents(callId: string, incoming: HealthEvent[]): boolean {
    const before = this.events.get(callId) ?? [];
    const after = mergeEvents(before, incoming);
    const changed = after.length !== before.length || after.some((e, i) => e !== before[i]);
    if (changed) this.events.set(callId, after);
    return changed;
  }

  apply(message: StreamMessage): ApplyResult {
    const result: ApplyResult = { kind: message.type, appeared: [], vanished: [], eventsChanged: [] };
    switch (message.type) {
      case "backlog":
        this.series.mergeBacklog(message.calls);
        break;
      case "snapshot": {
        // A snapshot older than the one held (a reordered frame) is ignored.
        if (message.at < this.snapshotAt) break;
        const next = new Map<string, CallHealth>();
        for (const call of message.calls) next.set(call.id, call);
        for (const id of next.keys()) if (!this.live.has(id)) result.appeared.push(id);
        for (const id of this.live.keys()) if (!next.has(id)) result.vanished.push(id);
        this.live = next;
        this.snapshotAt = message.at;
        for (const call of message.calls) {
          if (this.addEvents(call.id, call.events)) result.eventsChanged.push(call.id);
        }
        this.series.addSnapshot(message.at, message.calls);
        break;
      }
      case "event":
        if (this.addEvents(message.call, [message.event])) result.eventsChanged.push(message.call);
        break;
      case "unknown":
        break;
    }
    return result;
  }
}
