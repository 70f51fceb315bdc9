/**
 * The operator API and health stream as the dashboard sees them: types and tolerant parsers. A
 * field that is missing or of the wrong type becomes null (numbers) or a safe default, so a newer
 * server that adds fields, or a partial snapshot, never breaks the page. Pure: no DOM.
 */

export type CallState = "upcoming" | "live" | "ended";
export type CallHealthState = "good" | "degraded" | "idle";
export type ParticipantStatus = "good" | "degraded" | "lost";
export type Direction = "uplink" | "downlink";
export type EventKind = "joined" | "left" | "reconnected" | "degraded" | "recovered";

/** One booked (or hand-joined) party of a call, with its quality summary from history. */
export interface Party {
  identity: string;
  name: string;
  role: string;
  languages: string[];
  first_joined_at: number | null;
  last_left_at: number | null;
  reconnects: number | null;
  average_score: number | null;
  worst_score: number | null;
  worst_loss_percent: number | null;
  packets_expected: number | null;
  packets_lost: number | null;
}

/** A call from `GET /v1/calls` (times in unix seconds). */
export interface Call {
  id: string;
  booth: string;
  slot_start: number;
  slot_end: number;
  mode: string;
  state: CallState;
  booked: boolean;
  started_at: number | null;
  ended_at: number | null;
  parties: Party[];
}

export interface LiveParticipant {
  id: string;
  name: string;
  role: string;
  connected: boolean;
  publications: number;
}

/** `GET /v1/calls/{id}`: the call plus who is in it right now. */
export interface CallDetail extends Call {
  live: { participants: LiveParticipant[] } | null;
}

export interface DirectionHealth {
  score: number | null;
  bitrate_kbps: number | null;
  loss_percent: number | null;
  jitter_ms: number | null;
  rtt_ms: number | null;
  nacks: number | null;
  plis: number | null;
  /** Uplink only. */
  fps: number | null;
  freezes: number | null;
  audio_level: number | null;
}

export interface ParticipantHealth {
  id: string;
  name: string;
  role: string;
  connected: boolean;
  score: number | null;
  status: ParticipantStatus;
  uplink: DirectionHealth;
  downlink: DirectionHealth;
}

export interface HealthEvent {
  /** Unix ms. */
  at: number;
  participant: string;
  /** One of {@link EventKind}; other kinds from a newer server are shown as they come. */
  kind: string;
  direction: Direction | null;
  detail: string;
}

export interface CallHealth {
  id: string;
  booth: string;
  slot_start: number;
  slot_end: number;
  health: CallHealthState;
  participants: ParticipantHealth[];
  events: HealthEvent[];
}

/** Names of the per-participant series in the backlog (and in the dashboard's own buffers). */
export const METRICS = ["uplink_kbps", "downlink_kbps", "loss_percent", "jitter_ms", "rtt_ms", "score"] as const;
export type Metric = (typeof METRICS)[number];

/** One participant's recent samples: `t` in unix ms, each metric index-aligned with `t`. */
export interface SampleSeries {
  t: number[];
  values: Record<Metric, (number | null)[]>;
}

/** callId → participantId → samples. */
export type Backlog = Record<string, Record<string, SampleSeries>>;

export type StreamMessage =
  | { type: "backlog"; calls: Backlog }
  | { type: "snapshot"; at: number; calls: CallHealth[] }
  | { type: "event"; call: string; event: HealthEvent }
  | { type: "unknown" };

// ---- field readers ---------------------------------------------------------------------------

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function obj(v: unknown): Obj {
  return isObj(v) ? v : {};
}

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function str(v: unknown, fallback = ""): string {
  return typeof v === "string" ? v : typeof v === "number" ? String(v) : fallback;
}

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], fallback: T): T {
  return typeof v === "string" && (allowed as readonly string[]).includes(v) ? (v as T) : fallback;
}

// ---- REST ------------------------------------------------------------------------------------

export function parseParty(v: unknown): Party {
  const o = obj(v);
  return {
    identity: str(o.identity),
    name: str(o.name, str(o.identity)),
    role: str(o.role),
    languages: arr(o.languages).filter((l): l is string => typeof l === "string"),
    first_joined_at: num(o.first_joined_at),
    last_left_at: num(o.last_left_at),
    reconnects: num(o.reconnects),
    average_score: num(o.average_score),
    worst_score: num(o.worst_score),
    worst_loss_percent: num(o.worst_loss_percent),
    packets_expected: num(o.packets_expected),
    packets_lost: num(o.packets_lost),
  };
}

export function parseCall(v: unknown): Call | null {
  const o = obj(v);
  const id = str(o.id);
  if (id === "") return null;
  const slotStart = num(o.slot_start) ?? 0;
  return {
    id,
    booth: str(o.booth),
    slot_start: slotStart,
    slot_end: num(o.slot_end) ?? slotStart,
    mode: str(o.mode),
    state: oneOf(o.state, ["upcoming", "live", "ended"] as const, "upcoming"),
    booked: o.booked === true,
    started_at: num(o.started_at),
    ended_at: num(o.ended_at),
    parties: arr(o.parties).map(parseParty),
  };
}

/** `{"calls":[…]}` → calls (entries without an id are dropped). */
export function parseCallList(v: unknown): Call[] {
  return arr(obj(v).calls)
    .map(parseCall)
    .filter((c): c is Call => c !== null);
}

export function parseCallDetail(v: unknown): CallDetail | null {
  const call = parseCall(v);
  if (call === null) return null;
  const live = obj(v).live;
  return {
    ...call,
    live: isObj(live)
      ? {
          participants: arr(live.participants).map((p) => {
            const o = obj(p);
            return {
              id: str(o.id),
              name: str(o.name, str(o.id)),
              role: str(o.role),
              connected: o.connected === true,
              publications: num(o.publications) ?? 0,
            };
          }),
        }
      : null,
  };
}

/** An API error body `{code, message}`; anything else becomes a generic one. */
export function parseApiError(v: unknown, status: number): { code: string; message: string } {
  const o = obj(v);
  return {
    code: str(o.code, `http_${status}`),
    message: str(o.message, `The server answered ${status}.`),
  };
}

// ---- stream ----------------------------------------------------------------------------------

function parseDirection(v: unknown): DirectionHealth {
  const o = obj(v);
  return {
    score: num(o.score),
    bitrate_kbps: num(o.bitrate_kbps),
    loss_percent: num(o.loss_percent),
    jitter_ms: num(o.jitter_ms),
    rtt_ms: num(o.rtt_ms),
    nacks: num(o.nacks),
    plis: num(o.plis),
    fps: num(o.fps),
    freezes: num(o.freezes),
    audio_level: num(o.audio_level),
  };
}

export function parseParticipantHealth(v: unknown): ParticipantHealth {
  const o = obj(v);
  return {
    id: str(o.id),
    name: str(o.name, str(o.id)),
    role: str(o.role),
    connected: o.connected !== false,
    score: num(o.score),
    status: oneOf(o.status, ["good", "degraded", "lost"] as const, "good"),
    uplink: parseDirection(o.uplink),
    downlink: parseDirection(o.downlink),
  };
}

export function parseEvent(v: unknown): HealthEvent {
  const o = obj(v);
  return {
    at: num(o.at) ?? 0,
    participant: str(o.participant),
    kind: str(o.kind, "unknown"),
    direction: o.direction === "uplink" || o.direction === "downlink" ? o.direction : null,
    detail: str(o.detail),
  };
}

export function parseCallHealth(v: unknown): CallHealth | null {
  const o = obj(v);
  const id = str(o.id);
  if (id === "") return null;
  const slotStart = num(o.slot_start) ?? 0;
  return {
    id,
    booth: str(o.booth),
    slot_start: slotStart,
    slot_end: num(o.slot_end) ?? slotStart,
    health: oneOf(o.health, ["good", "degraded", "idle"] as const, "idle"),
    participants: arr(o.participants)
      .map(parseParticipantHealth)
      .filter((p) => p.id !== ""),
    events: arr(o.events).map(parseEvent),
  };
}

function parseSampleSeries(v: unknown): SampleSeries {
  const o = obj(v);
  const t = arr(o.t).map(num);
  // Keep only indices with a usable timestamp; every metric is read at the same indices.
  const keep: number[] = [];
  t.forEach((x, i) => {
    if (x !== null) keep.push(i);
  });
  const values = {} as Record<Metric, (number | null)[]>;
  for (const m of METRICS) {
    const raw = arr(o[m]);
    values[m] = keep.map((i) => num(raw[i]));
  }
  return { t: keep.map((i) => t[i] as number), values };
}

/** One text frame of `/v1/health/stream`. Malformed or unknown frames → `{type:"unknown"}`. */
export function parseStreamMessage(text: string): StreamMessage {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { type: "unknown" };
  }
  const o = obj(v);
  switch (o.type) {
    case "backlog": {
      const calls: Backlog = {};
      for (const [callId, participants] of Object.entries(obj(o.calls))) {
        const byParticipant: Record<string, SampleSeries> = {};
        for (const [pid, series] of Object.entries(obj(participants))) {
          byParticipant[pid] = parseSampleSeries(series);
        }
        calls[callId] = byParticipant;
      }
      return { type: "backlog", calls };
    }
    case "snapshot": {
      const at = num(o.at);
      if (at === null) return { type: "unknown" };
      return {
        type: "snapshot",
        at,
        calls: arr(o.calls)
          .map(parseCallHealth)
          .filter((c): c is CallHealth => c !== null),
      };
    }
    case "event": {
      const call = str(o.call);
      if (call === "" || !isObj(o.event)) return { type: "unknown" };
      return { type: "event", call, event: parseEvent(o.event) };
    }
    default:
      return { type: "unknown" };
  }
}
