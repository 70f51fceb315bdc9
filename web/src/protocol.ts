/**
 * Signaling protocol v1 message shapes (docs/protocol.md) and a tolerant parser for server frames.
 *
 * `parseServerMessage` checks just enough structure that the rest of the client can trust the types;
 * a frame of an unknown `type` (the server grows: `speaking`, …) becomes
 * `{type: "unknown"}` so callers can ignore it. Pure: no DOM, no socket.
 */
import type { Role } from "./jwt";

export type RequestId = number | string;
export type TransportKind = "publisher" | "subscriber";
export type TrackKind = "audio" | "video";
export type TrackSource = "microphone" | "camera" | "screen_share";

export interface ParticipantInfo {
  id: string;
  name: string;
  role: Role;
  languages: string[];
}

export interface PublicationInfo {
  id: string;
  participant: string;
  kind: TrackKind;
  source: TrackSource;
  channel?: string;
  layers?: string[];
}

export interface IceServerInfo {
  urls: string[];
  username?: string;
  credential?: string;
}

export interface SubscribedTrack {
  mid: string;
  publication: string;
}

export type Quality = "excellent" | "good" | "poor" | "lost";

export interface QualityEntry {
  participant: string;
  quality: Quality;
  loss_percent?: number;
  rtt_ms?: number;
}

export interface TrackInfo {
  mid: string;
  kind: TrackKind;
  source: TrackSource;
  channel?: string;
  layers?: string[];
}

/** A call's interpretation mode (docs/protocol.md §4b). */
export type InterpretationMode = "consecutive" | "simultaneous";

/** `floor`, or a language code. */
export type Channel = string;

export const FLOOR = "floor";

/** One audio publication the server forwards to this participant, and the gain to play it at. */
export interface AudioRoute {
  publication: string;
  participant: string;
  channel: Channel;
  /** 0.0–1.0. */
  gain: number;
  priority: "interpretation" | "floor";
}

export interface HandoverRequest {
  from: string;
  to: string;
}

/** An interpreter's own booth console state. */
export interface BoothSummary {
  pair: [string, string];
  output: string;
  input: Channel;
  on_air: boolean;
  /** Listeners of `output` hear this interpreter now. */
  live: boolean;
  /** Another booth holds `output`; an on-air interpreter waits for it. */
  output_held_by?: string;
  handovers: HandoverRequest[];
}

export interface RouteSummary {
  /** The listening language a listener picked (`null`: original sound only; also for interpreters). */
  listening: string | null;
  /** The language channel heard: a listener's interpretation, or an interpreter's relay input. */
  live_channel: string | null;
  floor_gain: number;
  booth?: BoothSummary;
}

/** The body of a `routing` message. */
export interface RoutingMessage {
  type: "routing";
  participant: string;
  mode: InterpretationMode;
  ramp_ms: number;
  routes: AudioRoute[];
  summary: RouteSummary;
}

/** Messages this client sends. `id` is filled in by the signaling client. */
export type ClientMessage =
  | { type: "join"; token: string }
  | { type: "offer"; transport: "publisher"; sdp: string }
  | { type: "answer"; transport: "subscriber"; sdp: string }
  | { type: "candidate"; transport: TransportKind; candidate: RTCIceCandidateInit }
  | { type: "publish"; track: TrackInfo }
  | { type: "unpublish"; publication: string }
  | { type: "subscribe"; publications: string[] }
  | { type: "unsubscribe"; publications: string[] }
  | { type: "set_language"; language: string | null }
  | { type: "switch_direction"; output: string }
  | { type: "set_input"; input: Channel }
  | { type: "request_handover"; to: string }
  | { type: "accept_handover"; from: string }
  | { type: "decline_handover"; from: string }
  | { type: "withdraw_handover"; to: string }
  | { type: "go_on_air"; output?: string }
  | { type: "go_off_air" }
  | { type: "ping" }
  | { type: "leave" };

export interface JoinedMessage {
  type: "joined";
  id?: RequestId;
  call: { id: string };
  participant: ParticipantInfo;
  participants: ParticipantInfo[];
  publications: PublicationInfo[];
  ice_servers: IceServerInfo[];
  /** Present once the server supports resume: true when the old session was kept. */
  resumed?: boolean;
  /** On resume: the publications this participant is still subscribed to. */
  subscriptions?: string[];
  /** On resume: this participant's own publications that are still live. */
  own_publications?: PublicationInfo[];
}

export type ServerMessage =
  | JoinedMessage
  | { type: "answer"; id?: RequestId; transport: TransportKind; sdp: string }
  | { type: "offer"; transport: TransportKind; sdp: string; tracks: SubscribedTrack[] }
  | { type: "published"; id?: RequestId; publication: PublicationInfo }
  | { type: "ok"; id?: RequestId }
  | { type: "pong"; id?: RequestId }
  | { type: "participant_joined"; participant: ParticipantInfo }
  | { type: "participant_left"; participant: string; reason: string }
  | { type: "publication_added"; publication: PublicationInfo }
  | { type: "publication_removed"; publication: string }
  | { type: "quality"; participants: QualityEntry[] }
  | RoutingMessage
  | { type: "error"; id?: RequestId; code: string; message: string }
  | { type: "unknown"; rawType: string };

/** Why a frame could not be used. */
export class MalformedMessage extends Error {}

type Obj = Record<string, unknown>;

function obj(v: unknown, what: string): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new MalformedMessage(`${what} is not an object`);
  }
  return v as Obj;
}

function str(o: Obj, key: string): string {
  const v = o[key];
  if (typeof v !== "string") throw new MalformedMessage(`${key} is not a string`);
  return v;
}

function arr(o: Obj, key: string): unknown[] {
  const v = o[key];
  if (!Array.isArray(v)) throw new MalformedMessage(`${key} is not an array`);
  return v;
}

function optStrings(o: Obj, key: string): string[] | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new MalformedMessage(`${key} is not an array`);
  return v.map((x) => {
    if (typeof x !== "string") throw new MalformedMessage(`${key} holds a non-string`);
    return x;
  });
}

function requestId(o: Obj): RequestId | undefined {
  const v = o.id;
  return typeof v === "number" || typeof v === "string" ? v : undefined;
}

function withId<T extends object>(o: Obj, msg: T): T & { id?: RequestId } {
  const id = requestId(o);
  return id === undefined ? msg : { ...msg, id };
}

export function parseParticipant(v: unknown): ParticipantInfo {
  const o = obj(v, "participant");
  return {
    id: str(o, "id"),
    name: str(o, "name"),
    role: str(o, "role") as Role,
    languages: optStrings(o, "languages") ?? [],
  };
}

export function parsePublication(v: unknown): PublicationInfo {
  const o = obj(v, "publication");
  const kind = str(o, "kind");
  if (kind !== "audio" && kind !== "video") throw new MalformedMessage("bad kind");
  const p: PublicationInfo = {
    id: str(o, "id"),
    participant: str(o, "participant"),
    kind,
    source: str(o, "source") as TrackSource,
  };
  if (typeof o.channel === "string") p.channel = o.channel;
  const layers = optStrings(o, "layers");
  if (layers !== undefined) p.layers = layers;
  return p;
}

function parseIceServer(v: unknown): IceServerInfo {
  const o = obj(v, "ice server");
  const s: IceServerInfo = { urls: optStrings(o, "urls") ?? [] };
  if (typeof o.username === "string") s.username = o.username;
  if (typeof o.credential === "string") s.credential = o.credential;
  return s;
}

function parseTransport(o: Obj): TransportKind {
  const t = str(o, "transport");
  if (t !== "publisher" && t !== "subscriber") throw new MalformedMessage("bad transport");
  return t;
}

const QUALITIES: readonly string[] = ["excellent", "good", "poor", "lost"];

function parseQualityEntry(v: unknown): QualityEntry {
  const o = obj(v, "quality entry");
  const quality = str(o, "quality");
  const e: QualityEntry = {
    participant: str(o, "participant"),
    quality: (QUALITIES.includes(quality) ? quality : "poor") as Quality,
  };
  if (typeof o.loss_percent === "number") e.loss_percent = o.loss_percent;
  if (typeof o.rtt_ms === "number") e.rtt_ms = o.rtt_ms;
  return e;
}

function num(o: Obj, key: string): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isFinite(v)) throw new MalformedMessage(`${key} is not a number`);
  return v;
}

function optStr(o: Obj, key: string): string | null {
  const v = o[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== "string") throw new MalformedMessage(`${key} is not a string`);
  return v;
}

/** Gains outside 0–1 (or not numbers) are forced into range: the server never sends them. */
function gain(o: Obj, key: string): number {
  const v = num(o, key);
  return Math.min(1, Math.max(0, v));
}

function parseRoute(v: unknown): AudioRoute {
  const o = obj(v, "route");
  return {
    publication: str(o, "publication"),
    participant: str(o, "participant"),
    channel: str(o, "channel"),
    gain: gain(o, "gain"),
    priority: o.priority === "interpretation" ? "interpretation" : "floor",
  };
}

function parseHandover(v: unknown): HandoverRequest {
  const o = obj(v, "handover");
  return { from: str(o, "from"), to: str(o, "to") };
}

function parseBooth(v: unknown): BoothSummary {
  const o = obj(v, "booth");
  const pair = optStrings(o, "pair");
  if (pair === undefined || pair.length !== 2) throw new MalformedMessage("pair is not two languages");
  const b: BoothSummary = {
    pair: [pair[0] ?? "", pair[1] ?? ""],
    output: str(o, "output"),
    input: str(o, "input"),
    on_air: o.on_air === true,
    live: o.live === true,
    handovers: Array.isArray(o.handovers) ? o.handovers.map(parseHandover) : [],
  };
  const held = optStr(o, "output_held_by");
  if (held !== null) b.output_held_by = held;
  return b;
}

function parseRouting(o: Obj): RoutingMessage {
  const summary = obj(o.summary, "summary");
  const s: RouteSummary = {
    listening: optStr(summary, "listening"),
    live_channel: optStr(summary, "live_channel"),
    floor_gain: typeof summary.floor_gain === "number" ? gain(summary, "floor_gain") : 1,
  };
  if (summary.booth !== undefined && summary.booth !== null) s.booth = parseBooth(summary.booth);
  const ramp = typeof o.ramp_ms === "number" && Number.isFinite(o.ramp_ms) ? Math.max(0, o.ramp_ms) : 0;
  return {
    type: "routing",
    participant: str(o, "participant"),
    mode: o.mode === "simultaneous" ? "simultaneous" : "consecutive",
    ramp_ms: ramp,
    routes: arr(o, "routes").map(parseRoute),
    summary: s,
  };
}

/** Parses one text frame from the server. Throws {@link MalformedMessage} for unusable frames. */
export function parseServerMessage(text: string): ServerMessage {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new MalformedMessage("not JSON");
  }
  const o = obj(raw, "message");
  const type = str(o, "type");
  switch (type) {
    case "joined": {
      const m: JoinedMessage = {
        type,
        call: { id: str(obj(o.call, "call"), "id") },
        participant: parseParticipant(o.participant),
        participants: arr(o, "participants").map(parseParticipant),
        publications: arr(o, "publications").map(parsePublication),
        ice_servers: Array.isArray(o.ice_servers) ? o.ice_servers.map(parseIceServer) : [],
      };
      if (typeof o.resumed === "boolean") m.resumed = o.resumed;
      const subs = optStrings(o, "subscriptions");
      if (subs !== undefined) m.subscriptions = subs;
      if (Array.isArray(o.own_publications)) {
        m.own_publications = o.own_publications.map(parsePublication);
      }
      return withId(o, m);
    }
    case "answer":
      return withId(o, { type, transport: parseTransport(o), sdp: str(o, "sdp") });
    case "offer":
      return {
        type,
        transport: parseTransport(o),
        sdp: str(o, "sdp"),
        tracks: arr(o, "tracks").map((t) => {
          const to = obj(t, "track");
          return { mid: str(to, "mid"), publication: str(to, "publication") };
        }),
      };
    case "published":
      return withId(o, { type, publication: parsePublication(o.publication) });
    case "ok":
    case "pong":
      return withId(o, { type });
    case "participant_joined":
      return { type, participant: parseParticipant(o.participant) };
    case "participant_left":
      return {
        type,
        participant: str(o, "participant"),
        reason: typeof o.reason === "string" ? o.reason : "disconnected",
      };
    case "publication_added":
      return { type, publication: parsePublication(o.publication) };
    case "publication_removed":
      return { type, publication: str(o, "publication") };
    case "quality":
      return { type, participants: arr(o, "participants").map(parseQualityEntry) };
    case "routing":
      return parseRouting(o);
    case "error":
      return withId(o, {
        type,
        code: str(o, "code"),
        message: typeof o.message === "string" ? o.message : "",
      });
    default:
      return { type: "unknown", rawType: type };
  }
}
