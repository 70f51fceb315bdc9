/**
 * What the interpretation controls show, derived from the server's `routing` message and the call's
 * participants (docs/interpretation.md, docs/protocol.md §4b): the listener's language choices and
 * what they hear now, and an interpreter's booth console (output, direction switch, relay input, on
 * air / live, handover requests). Also which channel this client publishes its microphone into.
 * Pure: no DOM, no socket; the UI (`ui/interpretation.ts`) renders these views.
 */
import { FLOOR, type ParticipantInfo, type RoutingMessage } from "./protocol";

/** The key that switches an interpreter's direction (besides the button). */
export const DIRECTION_KEY = "d";

function distinct(languages: readonly string[]): string[] {
  return [...new Set(languages)];
}

/**
 * Whether a participant is an interpreter (has a booth): an `interpreter`, or an `office` whose
 * token carries exactly two languages (the relaying office). Companies and buyers never are.
 */
export function isInterpreter(p: Pick<ParticipantInfo, "role" | "languages">): boolean {
  if (p.role !== "interpreter" && p.role !== "office") return false;
  return distinct(p.languages).length === 2;
}

/**
 * The `channel` to publish this participant's microphone with: an interpreter's booth output (the
 * routing's current output when known, else the server's starting output, the pair's second
 * language); everyone else speaks on the floor.
 */
export function publishChannel(
  self: Pick<ParticipantInfo, "role" | "languages">,
  routing: RoutingMessage | null,
): string {
  const booth = routing?.summary.booth;
  if (booth !== undefined) return booth.output;
  if (!isInterpreter(self)) return FLOOR;
  return distinct(self.languages)[1] ?? FLOOR;
}

/** Every language somebody in the call has (self included), sorted by code. */
export function callLanguages(self: ParticipantInfo | null, others: Iterable<ParticipantInfo>): string[] {
  const all = new Set<string>();
  for (const p of [...(self === null ? [] : [self]), ...others]) for (const l of p.languages) all.add(l);
  return [...all].sort();
}

let displayNames: Intl.DisplayNames | null | undefined;

/** "English (en)"; the bare code when the runtime cannot name it. */
export function languageLabel(code: string): string {
  if (displayNames === undefined) {
    try {
      displayNames = new Intl.DisplayNames(["en"], { type: "language", fallback: "none" });
    } catch {
      displayNames = null;
    }
  }
  let name: string | undefined;
  try {
    name = displayNames?.of(code);
  } catch {
    name = undefined;
  }
  return name === undefined || name === code ? code : `${name} (${code})`;
}

/** Just the name ("English"), or the code. */
export function languageName(code: string): string {
  const label = languageLabel(code);
  const i = label.lastIndexOf(" (");
  return i > 0 ? label.slice(0, i) : label;
}

export interface LanguageOption {
  /** `""` is the original sound (no interpretation): `set_language` with `null`. */
  value: string;
  label: string;
}

export const ORIGINAL_LABEL = "Original (floor)";

/**
 * The listener's choices: the original sound, then each language of the call. The current
 * listening language is always offered, even if nobody in the call has it any more.
 */
export function languageOptions(languages: readonly string[], listening: string | null): LanguageOption[] {
  const codes = new Set(languages);
  if (listening !== null) codes.add(listening);
  return [
    { value: "", label: ORIGINAL_LABEL },
    ...[...codes].sort().map((code) => ({ value: code, label: languageLabel(code) })),
  ];
}

export interface ListeningView {
  /** Whether the picker applies (simultaneous mode, a listener). */
  active: boolean;
  /** The picker's value: the listening language, or `""` for the original sound. */
  value: string;
  /** What is heard: `floor` (floor only, at full volume), a language channel, or `all` (consecutive). */
  channel: string;
  floorGain: number;
  text: string;
}

const percent = (gain: number): string => `${Math.round(gain * 100)} %`;

/** What a listener hears now, in words, from their `routing` message. */
export function listeningView(routing: RoutingMessage | null): ListeningView {
  if (routing === null) {
    return { active: false, value: "", channel: FLOOR, floorGain: 1, text: "Waiting for the call's audio routing…" };
  }
  const { listening, live_channel: live, floor_gain: floorGain } = routing.summary;
  const value = listening ?? "";
  if (routing.mode !== "simultaneous") {
    return { active: false, value, channel: "all", floorGain, text: "Consecutive interpretation: you hear everyone." };
  }
  if (routing.summary.booth !== undefined) {
    return { active: false, value, channel: live ?? FLOOR, floorGain, text: "" };
  }
  if (listening === null) {
    return { active: true, value, channel: FLOOR, floorGain, text: "You hear the original sound (floor)." };
  }
  if (live === listening) {
    return {
      active: true,
      value,
      channel: live,
      floorGain,
      text: `You hear the ${languageName(live)} interpretation, the floor at ${percent(floorGain)}.`,
    };
  }
  return {
    active: true,
    value,
    channel: FLOOR,
    floorGain,
    text: `Nobody is interpreting into ${languageName(listening)} now: you hear the floor.`,
  };
}

/** An interpreter's console state. */
export type BoothStatus = "live" | "waiting" | "off-air";

export interface IncomingHandover {
  from: string;
  name: string;
  /** "Lee asks to take over" (you are on air) / "Lee asks you to take over" (you are passive). */
  text: string;
}

export interface ConsoleView {
  mode: RoutingMessage["mode"];
  pair: [string, string];
  output: string;
  /** The other language of the pair: where the direction switch goes. */
  switchTo: string;
  input: string;
  /** `floor` first, then the call's language channels except the output. */
  inputOptions: string[];
  onAir: boolean;
  live: boolean;
  status: BoothStatus;
  /** Who holds the output channel while this interpreter waits. */
  heldBy: string | null;
  heldByName: string | null;
  /** Participants in the call with the same pair. */
  partners: { id: string; name: string }[];
  /** The partner a handover request goes to (the one on air when it can be told). */
  handoverPartner: { id: string; name: string } | null;
  handoverLabel: string;
  canRequestHandover: boolean;
  incoming: IncomingHandover[];
  outgoing: { to: string; name: string }[];
  /** The big indicator's words. */
  liveText: string;
  /** A line under the console (mode, relay fallback…). */
  note: string;
}

function samePair(a: readonly string[], b: readonly string[]): boolean {
  const x = distinct(a);
  const y = distinct(b);
  return x.length === 2 && y.length === 2 && x.every((l) => y.includes(l));
}

/**
 * The booth console of an interpreter, from their `routing` message; `null` for listeners (no
 * booth in the summary).
 */
export function consoleView(
  routing: RoutingMessage | null,
  selfId: string | null,
  others: Iterable<ParticipantInfo>,
  languages: readonly string[],
): ConsoleView | null {
  const booth = routing?.summary.booth;
  if (routing === null || booth === undefined) return null;
  const people = new Map<string, ParticipantInfo>();
  for (const p of others) if (p.id !== selfId) people.set(p.id, p);
  const nameOf = (id: string): string => people.get(id)?.name ?? id;

  const [a, b] = booth.pair;
  const switchTo = booth.output === a ? b : a;
  const inputOptions = [
    FLOOR,
    ...[...new Set([...languages, a, b])].filter((l) => l !== booth.output && l !== FLOOR).sort(),
  ];
  if (!inputOptions.includes(booth.input)) inputOptions.push(booth.input);

  const partners = [...people.values()]
    .filter((p) => isInterpreter(p) && samePair(p.languages, booth.pair))
    .map((p) => ({ id: p.id, name: p.name }));
  // A passive partner hears the live partner's booth output; that one is on air.
  const heard = new Set(routing.routes.filter((r) => r.channel !== FLOOR).map((r) => r.participant));
  const handoverPartner = partners.find((p) => heard.has(p.id)) ?? partners[0] ?? null;

  const incoming = booth.handovers
    .filter((h) => h.to === selfId)
    .map((h) => ({
      from: h.from,
      name: nameOf(h.from),
      text: booth.on_air ? `${nameOf(h.from)} asks to take over` : `${nameOf(h.from)} asks you to take over`,
    }));
  const outgoing = booth.handovers.filter((h) => h.from === selfId).map((h) => ({ to: h.to, name: nameOf(h.to) }));

  const status: BoothStatus = booth.live ? "live" : booth.on_air ? "waiting" : "off-air";
  const heldBy = booth.output_held_by ?? null;
  const heldByName = heldBy === null ? null : nameOf(heldBy);
  const out = languageName(booth.output);
  let liveText: string;
  if (status === "live") liveText = `LIVE · into ${out}`;
  else if (status === "waiting") {
    liveText = heldByName !== null ? `WAITING · ${out} is held by ${heldByName}` : "ON AIR · not live (microphone not published)";
  } else liveText = "OFF AIR";

  let handoverLabel = "Hand over";
  if (handoverPartner !== null) {
    handoverLabel = booth.on_air ? `Hand over to ${handoverPartner.name}` : `Take over from ${handoverPartner.name}`;
  }

  let note = "";
  if (routing.mode !== "simultaneous") note = "Consecutive interpretation: everyone hears everyone, whatever the console says.";
  else if (booth.input !== FLOOR && routing.summary.live_channel !== booth.input) {
    note = `Nobody is speaking into ${languageName(booth.input)} now: you hear the floor.`;
  }

  return {
    mode: routing.mode,
    pair: [a, b],
    output: booth.output,
    switchTo,
    input: booth.input,
    inputOptions,
    onAir: booth.on_air,
    live: booth.live,
    status,
    heldBy,
    heldByName,
    partners,
    handoverPartner,
    handoverLabel,
    canRequestHandover: handoverPartner !== null && booth.handovers.length === 0,
    incoming,
    outgoing,
    liveText,
    note,
  };
}

/** The parts of a keyboard event the direction shortcut looks at. */
export interface KeyInput {
  key: string;
  ctrlKey: boolean;
  metaKey: boolean;
  altKey: boolean;
  repeat: boolean;
  /** The focus is in a text field, select or other editable element. */
  editing: boolean;
}

/** Whether a key press is the direction switch: a plain "D", not held down, not while typing. */
export function isDirectionShortcut(e: KeyInput): boolean {
  return e.key.toLowerCase() === DIRECTION_KEY && !e.ctrlKey && !e.metaKey && !e.altKey && !e.repeat && !e.editing;
}
