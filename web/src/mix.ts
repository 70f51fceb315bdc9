/**
 * Ducking decisions for the audio graph, from the server's `routing` messages (docs/protocol.md §4b):
 * which gain each received audio publication should play at ({@link gainTargets}) and how to get
 * there from what is already scheduled ({@link planGain}). The Web Audio side (`audiograph.ts`) only
 * carries these decisions out. Pure: no DOM, no Web Audio, no clock of its own.
 */
import type { RoutingMessage } from "./protocol";

/** Gains closer than this are the same gain (no new ramp). */
export const GAIN_EPSILON = 1e-4;

/** Gain of received audio before the first `routing` message (a server that does not route). */
export const UNROUTED_DEFAULT_GAIN = 1;

/**
 * The gain each of `publications` should play at: its route's gain, or 0 when the routing does not
 * list it (the server does not forward it; should packets still arrive, they stay silent). Before
 * any routing message (`null`), everything plays at {@link UNROUTED_DEFAULT_GAIN}.
 */
export function gainTargets(routing: RoutingMessage | null, publications: Iterable<string>): Map<string, number> {
  const targets = new Map<string, number>();
  const routed = new Map<string, number>();
  for (const route of routing?.routes ?? []) routed.set(route.publication, clampGain(route.gain));
  for (const id of publications) {
    targets.set(id, routing === null ? UNROUTED_DEFAULT_GAIN : (routed.get(id) ?? 0));
  }
  return targets;
}

export function clampGain(gain: number): number {
  if (!Number.isFinite(gain)) return 0;
  return Math.min(1, Math.max(0, gain));
}

/** What to do with one gain node. */
export type GainStep =
  /** The node already goes to this target (or is there): leave any running ramp alone. */
  | { kind: "keep" }
  /** Jump (no ramp configured). */
  | { kind: "set"; to: number }
  /**
   * Cancel what is scheduled and ramp linearly over `seconds` to `to`, starting from `from`
   * (`null`: from the node's current value, wherever a running ramp has got to).
   */
  | { kind: "ramp"; from: number | null; to: number; seconds: number };

/**
 * How to move a gain node to `target`, given the target it was last sent to (`null`: a node just
 * created, which fades in from silence) and the routing's `ramp_ms`.
 *
 * Repeated routing messages with the same gain never restart a running ramp; a changed target
 * interrupts one and ramps on from wherever it got to, so a quick back-and-forth never jumps.
 */
export function planGain(scheduled: number | null, target: number, rampMs: number): GainStep {
  const to = clampGain(target);
  const seconds = Number.isFinite(rampMs) && rampMs > 0 ? rampMs / 1000 : 0;
  if (scheduled === null) {
    if (seconds === 0 || to === 0) return { kind: "set", to };
    return { kind: "ramp", from: 0, to, seconds };
  }
  if (Math.abs(scheduled - to) < GAIN_EPSILON) return { kind: "keep" };
  if (seconds === 0) return { kind: "set", to };
  return { kind: "ramp", from: null, to, seconds };
}

/**
 * The value of a linear ramp from `from` at `start` to `to` at `start + duration` (any time unit),
 * at time `t`: what `linearRampToValueAtTime` produces.
 */
export function rampValueAt(from: number, to: number, start: number, duration: number, t: number): number {
  if (duration <= 0 || t >= start + duration) return to;
  if (t <= start) return from;
  return from + ((to - from) * (t - start)) / duration;
}
