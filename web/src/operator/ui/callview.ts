/**
 * One call's page (`#call-page[data-call]`): who is in it with their overall, uplink and downlink
 * scores (`.participant-row[data-participant][data-status]`, the degraded direction's cell marked
 * `data-degraded`), live charts of bitrate, loss, jitter and RTT (one line per participant, fed by the
 * stream), the event timeline (`#events li[data-kind]`, newest first), and for calls that are not
 * live the history summary of each party. Rows are keyed and updated in place every second.
 */
import { byId, h, setData, setText } from "../../ui/dom";
import { capital, clock, clockSeconds, duration, kbps, ms, percent, score, slotText } from "../format";
import type { CallDetail, CallHealth, DirectionHealth, HealthEvent, Metric, Party, ParticipantHealth } from "../model";
import { callReason, degradedDirections, participantReason } from "../reason";
import type { DashboardStore } from "../store";
import { LiveChart } from "./charts";
import type { ChartLine, ChartSpec } from "./charts";

/** Line colours, distinct from each other and from the status colours' meaning. */
export const PALETTE = ["#60a5fa", "#f472b6", "#a78bfa", "#2dd4bf", "#facc15", "#fb923c", "#cbd5e1", "#e879f9"];

const CHARTS: (ChartSpec & { metric: Metric })[] = [
  { id: "bitrate", metric: "uplink_kbps", floor: 100, tick: (v) => (v >= 1000 ? `${+(v / 1000).toFixed(2)}M` : v === 0 ? "0" : `${Math.round(v)}k`) },
  { id: "loss", metric: "loss_percent", floor: 5, tick: (v) => `${Math.round(v * 10) / 10}%` },
  { id: "jitter", metric: "jitter_ms", floor: 40, tick: (v) => `${Math.round(v)} ms` },
  { id: "rtt", metric: "rtt_ms", floor: 150, tick: (v) => `${Math.round(v)} ms` },
];

interface RowParts {
  row: HTMLTableRowElement;
  swatch: HTMLElement;
  name: HTMLElement;
  role: HTMLElement;
  languages: HTMLElement;
  reason: HTMLElement;
  connection: HTMLElement;
  score: HTMLElement;
  uplinkCell: HTMLElement;
  uplinkScore: HTMLElement;
  uplinkDetail: HTMLElement;
  downlinkCell: HTMLElement;
  downlinkScore: HTMLElement;
  downlinkDetail: HTMLElement;
  rtt: HTMLElement;
}

const EVENT_TEXT: Record<string, string> = {
  joined: "joined",
  left: "left",
  reconnected: "reconnected",
  degraded: "degraded",
  recovered: "recovered",
};

function directionDetail(d: DirectionHealth, withVideo: boolean): string {
  const parts = [kbps(d.bitrate_kbps), `loss ${percent(d.loss_percent)}`, `jitter ${ms(d.jitter_ms)}`];
  if (withVideo && d.fps !== null) parts.push(`${Math.round(d.fps)} fps`);
  if (withVideo && d.freezes !== null && d.freezes > 0) parts.push(`${d.freezes} freeze${d.freezes === 1 ? "" : "s"}`);
  return parts.join(" · ");
}

export class CallView {
  private callId: string | null = null;
  private detail: CallDetail | null = null;
  private rows = new Map<string, RowParts>();
  private charts: LiveChart[] = [];
  private colors = new Map<string, Map<string, number>>();
  private eventsKey = "";

  constructor(private readonly store: DashboardStore) {}

  get current(): string | null {
    return this.callId;
  }

  /** Switches the page to a call (clears what the previous one showed). */
  open(callId: string): void {
    if (this.callId === callId) return;
    this.close();
    this.callId = callId;
    const page = byId("call-page");
    page.dataset.call = callId;
    this.charts = CHARTS.map((spec) => new LiveChart(byId(`chart-${spec.id}`), spec));
    setText(byId("call-title"), callId);
    setText(byId("call-meta"), "");
    this.render();
  }

  close(): void {
    for (const c of this.charts) c.destroy();
    this.charts = [];
    this.rows.clear();
    byId("participant-rows").replaceChildren();
    byId("events").replaceChildren();
    byId("history-rows").replaceChildren();
    this.eventsKey = "";
    this.detail = null;
    this.callId = null;
    delete byId("call-page").dataset.call;
  }

  setDetail(detail: CallDetail): void {
    if (detail.id !== this.callId) return;
    this.detail = detail;
    this.render();
  }

  private colorOf(pid: string): string {
    const callId = this.callId ?? "";
    let map = this.colors.get(callId);
    if (map === undefined) {
      map = new Map();
      this.colors.set(callId, map);
    }
    let idx = map.get(pid);
    if (idx === undefined) {
      idx = map.size;
      map.set(pid, idx);
    }
    return PALETTE[idx % PALETTE.length] as string;
  }

  private partyOf(pid: string, name: string): Party | undefined {
    const parties = this.detail?.parties ?? [];
    return parties.find((p) => p.identity === pid) ?? parties.find((p) => p.name !== "" && p.name === name);
  }

  /** Redraws everything from the store and the REST detail. Called on each stream frame. */
  render(): void {
    const callId = this.callId;
    if (callId === null) return;
    const live = this.store.live.get(callId);
    this.renderHeader(live);
    this.renderParticipants(live);
    this.renderCharts(live);
    this.renderEvents(live);
    this.renderHistory(live);
  }

  private renderHeader(live: CallHealth | undefined): void {
    const d = this.detail;
    const booth = d?.booth || live?.booth || "";
    const start = d?.slot_start ?? live?.slot_start;
    const end = d?.slot_end ?? live?.slot_end;
    const title = [booth, start !== undefined && end !== undefined ? slotText(start, end) : ""].filter((s) => s !== "").join(" · ");
    setText(byId("call-title"), title || (this.callId ?? ""));

    const state = live !== undefined ? "live" : (d?.state ?? "unknown");
    const health = live?.health ?? (d?.state === "ended" ? "ended" : d?.state === "upcoming" ? "upcoming" : "idle");
    const pill = byId("call-state");
    setData(pill, "health", health);
    setText(
      pill,
      live === undefined
        ? capital(state === "unknown" ? "loading" : state)
        : live.health === "degraded"
          ? "Live · degraded"
          : live.health === "idle"
            ? "Live · idle"
            : "Live · good",
    );

    const meta: string[] = [];
    if (d !== null) {
      if (d.mode !== "") meta.push(`${capital(d.mode)} interpretation`);
      if (d.started_at !== null) meta.push(`started ${clock(d.started_at)}`);
      if (d.ended_at !== null) meta.push(`ended ${clock(d.ended_at)}`);
      if (d.started_at !== null && d.ended_at !== null) meta.push(duration(d.ended_at - d.started_at));
    }
    meta.push(`id ${this.callId ?? ""}`);
    setText(byId("call-meta"), meta.join(" · "));

    const reason = byId("call-reason");
    const text = live !== undefined ? callReason(live) : null;
    reason.hidden = text === null;
    setText(reason, text ?? "");

    const end_ = byId<HTMLButtonElement>("end-call");
    end_.disabled = d?.state === "ended" && live === undefined;
  }

  private renderParticipants(live: CallHealth | undefined): void {
    const tbody = byId("participant-rows");
    const participants = live?.participants ?? [];
    const events = this.store.eventsOf(this.callId ?? "");
    const seen = new Set<string>();
    participants.forEach((p, index) => {
      seen.add(p.id);
      let parts = this.rows.get(p.id);
      if (parts === undefined) {
        parts = this.makeRow(p.id);
        this.rows.set(p.id, parts);
      }
      if (tbody.children[index] !== parts.row) tbody.insertBefore(parts.row, tbody.children[index] ?? null);
      this.updateRow(parts, p, participants, events);
    });
    for (const [pid, parts] of this.rows) {
      if (!seen.has(pid)) {
        parts.row.remove();
        this.rows.delete(pid);
      }
    }
    byId("participants-empty").hidden = participants.length > 0;
    setText(
      byId("participants-empty"),
      live === undefined ? "Nobody is connected: the call is not live." : "Nobody has joined yet.",
    );

    // Booked parties not (yet) in the call.
    const absent = (this.detail?.parties ?? []).filter(
      (party) => !participants.some((p) => p.id === party.identity || (party.name !== "" && p.name === party.name)),
    );
    const absentEl = byId("absent-parties");
    absentEl.hidden = live === undefined || absent.length === 0;
    setText(absentEl, absent.length > 0 ? `Not joined: ${absent.map((p) => `${p.name} (${p.role})`).join(", ")}` : "");
  }

  private makeRow(pid: string): RowParts {
    const swatch = h("span", { class: "swatch", "aria-hidden": "true" });
    const name = h("span", { class: "name" });
    const role = h("span", { class: "role-pill" });
    const languages = h("span", { class: "languages" });
    const reason = h("span", { class: "reason" });
    const connection = h("span", { class: "connection" });
    const scoreEl = h("span", { class: "score" });
    const uplinkScore = h("span", { class: "uplink-score dir-score" });
    const uplinkDetail = h("span", { class: "dir-detail" });
    const downlinkScore = h("span", { class: "downlink-score dir-score" });
    const downlinkDetail = h("span", { class: "dir-detail" });
    const rtt = h("span", { class: "rtt" });
    const uplinkCell = h("td", { class: "p-uplink" }, uplinkScore, uplinkDetail);
    const downlinkCell = h("td", { class: "p-downlink" }, downlinkScore, downlinkDetail);
    const row = h(
      "tr",
      { class: "participant-row", "data-participant": pid },
      h(
        "td",
        { class: "p-name" },
        h("span", { class: "p-name-line" }, swatch, name),
        h("span", { class: "p-sub" }, role, languages, connection),
        reason,
      ),
      h("td", { class: "p-score" }, scoreEl),
      uplinkCell,
      downlinkCell,
      h("td", { class: "p-rtt" }, rtt),
    );
    return {
      row,
      swatch,
      name,
      role,
      languages,
      reason,
      connection,
      score: scoreEl,
      uplinkCell,
      uplinkScore,
      uplinkDetail,
      downlinkCell,
      downlinkScore,
      downlinkDetail,
      rtt,
    };
  }

  private updateRow(parts: RowParts, p: ParticipantHealth, all: ParticipantHealth[], events: HealthEvent[]): void {
    setData(parts.row, "status", p.status);
    setData(parts.row, "connected", String(p.connected));
    const color = this.colorOf(p.id);
    if (parts.swatch.style.backgroundColor === "" || parts.swatch.dataset.color !== color) {
      parts.swatch.style.backgroundColor = color;
      parts.swatch.dataset.color = color;
    }
    setText(parts.name, p.name || p.id);
    setText(parts.role, p.role);
    setData(parts.role, "role", p.role);
    const party = this.partyOf(p.id, p.name);
    setText(parts.languages, party !== undefined && party.languages.length > 0 ? party.languages.join(", ") : "");

    const reason = participantReason(p, all, events);
    parts.reason.hidden = reason === null;
    setText(parts.reason, reason ?? "");

    setText(parts.connection, p.connected ? (p.status === "lost" ? "connection lost" : "connected") : "disconnected");
    setText(parts.score, score(p.score));

    const degraded = degradedDirections(p, events);
    setData(parts.uplinkCell, "degraded", String(degraded.includes("uplink")));
    setData(parts.downlinkCell, "degraded", String(degraded.includes("downlink")));
    setText(parts.uplinkScore, score(p.uplink.score));
    setText(parts.downlinkScore, score(p.downlink.score));
    setText(parts.uplinkDetail, directionDetail(p.uplink, true));
    setText(parts.downlinkDetail, directionDetail(p.downlink, false));
    const rtt = p.uplink.rtt_ms ?? p.downlink.rtt_ms;
    setText(parts.rtt, ms(rtt));
  }

  private renderCharts(live: CallHealth | undefined): void {
    const callId = this.callId;
    if (callId === null) return;
    const series = this.store.series;
    // Everyone with samples (also those who left, until their line scrolls out), snapshot order first.
    const pids = [...new Set([...(live?.participants ?? []).map((p) => p.id), ...series.participantIds(callId)])].filter(
      (pid) => series.get(callId, pid) !== undefined,
    );
    const nameOf = (pid: string): string => {
      const p = live?.participants.find((q) => q.id === pid);
      if (p !== undefined) return p.name || p.id;
      return this.partyOf(pid, "")?.name ?? pid;
    };
    const lines: ChartLine[] = pids.map((pid) => ({ label: nameOf(pid), color: this.colorOf(pid) }));
    const to = series.latest;
    const from = to - series.windowMs;
    CHARTS.forEach((spec, i) => {
      const data = series.aligned(callId, spec.metric, pids);
      this.charts[i]?.update(data.x, data.ys, lines, from, to);
    });

    const legend = byId("chart-legend");
    const key = JSON.stringify(lines);
    if (legend.dataset.key !== key) {
      legend.dataset.key = key;
      legend.replaceChildren(
        ...lines.map((l) => {
          const sw = h("span", { class: "swatch", "aria-hidden": "true" });
          sw.style.backgroundColor = l.color;
          return h("span", { class: "legend-item" }, sw, l.label);
        }),
      );
    }
  }

  private renderEvents(live: CallHealth | undefined): void {
    const callId = this.callId ?? "";
    const events = this.store.eventsOf(callId);
    const key = `${events.length}|${events[0]?.at ?? 0}|${live?.participants.length ?? 0}`;
    if (key === this.eventsKey) return;
    this.eventsKey = key;
    const named = live?.participants ?? [];
    const labelOf = (pid: string): string => {
      const p = named.find((q) => q.id === pid);
      if (p !== undefined) return p.name || p.id;
      return this.partyOf(pid, "")?.name ?? pid;
    };
    const roleOf = (pid: string): string => named.find((q) => q.id === pid)?.role ?? this.partyOf(pid, "")?.role ?? "";
    const items = events.map((e) => {
      const verb = EVENT_TEXT[e.kind] ?? e.kind;
      const role = roleOf(e.participant);
      // A join's detail may just repeat who joined; only say what adds something.
      const detail = [e.participant, labelOf(e.participant), role].includes(e.detail) ? "" : e.detail;
      const what =
        e.kind === "degraded" || e.kind === "recovered"
          ? `${e.direction ?? "connection"} ${verb}${detail !== "" ? `: ${detail}` : ""}`
          : `${verb}${detail !== "" ? ` (${detail})` : ""}`;
      return h(
        "li",
        { "data-kind": e.kind, "data-participant": e.participant },
        h("time", { datetime: new Date(e.at).toISOString() }, clockSeconds(e.at)),
        h("span", { class: "ev-who" }, labelOf(e.participant), role !== "" ? h("span", { class: "ev-role" }, role) : ""),
        h("span", { class: "ev-what" }, what),
      );
    });
    byId("events").replaceChildren(...items);
    byId("events-empty").hidden = items.length > 0;
  }

  private renderHistory(live: CallHealth | undefined): void {
    const section = byId("history");
    const d = this.detail;
    const show = live === undefined && d !== null && d.parties.length > 0;
    section.hidden = !show;
    // A call that is not live shows its parties' history instead of an empty live table.
    byId("live-panel").hidden = show;
    if (!show) return;
    const key = JSON.stringify(d.parties);
    const tbody = byId("history-rows");
    if (tbody.dataset.key === key) return;
    tbody.dataset.key = key;
    tbody.replaceChildren(
      ...d.parties.map((p) => {
        const loss =
          p.packets_expected !== null && p.packets_expected > 0 && p.packets_lost !== null
            ? (100 * p.packets_lost) / p.packets_expected
            : null;
        const role = h("span", { class: "role-pill", "data-role": p.role }, p.role);
        return h(
          "tr",
          { class: "party-row", "data-party": p.identity },
          h("td", {}, h("span", { class: "name" }, p.name || p.identity), " ", role),
          h("td", {}, p.languages.join(", ")),
          h(
            "td",
            {},
            p.first_joined_at !== null ? clock(p.first_joined_at) : "never joined",
            p.last_left_at !== null ? `–${clock(p.last_left_at)}` : "",
          ),
          h("td", { class: "num" }, p.reconnects !== null ? String(p.reconnects) : "–"),
          h("td", { class: "num" }, score(p.average_score)),
          h("td", { class: "num" }, score(p.worst_score)),
          h("td", { class: "num" }, percent(loss)),
          h("td", { class: "num" }, percent(p.worst_loss_percent)),
        );
      }),
    );
  }
}
