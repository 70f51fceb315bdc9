/**
 * Remote audio through Web Audio, so the floor can be ducked under interpretation with smooth gain
 * ramps instead of jumps: each received audio track (one per publication) goes
 * `MediaStreamAudioSourceNode → GainNode → AnalyserNode → destination` (with a second analyser on the
 * source for who is speaking, whatever the gain), in the page's one AudioContext (`meter.ts`), and
 * each `routing` message
 * sets every gain node's target (its route's gain, 0 when not routed), ramped linearly over the
 * message's `ramp_ms` (`mix.ts` decides; this file only schedules).
 *
 * Chromium only pulls a remote WebRTC track into Web Audio while the track is also attached to a
 * media element, so the tiles keep one muted `<audio>` per publication (`ui/tiles.ts`); what is
 * heard comes from here. Without Web Audio the tiles' elements play unmuted and nothing is ducked.
 */
import { audioContext } from "./meter";
import { gainTargets, planGain } from "./mix";
import type { RoutingMessage } from "./protocol";

interface Channel {
  track: MediaStreamTrack;
  source: MediaStreamAudioSourceNode;
  gain: GainNode;
  /** After the gain: what is heard. */
  analyser: AnalyserNode;
  /** Before the gain: how loud the publisher speaks. */
  input: AnalyserNode;
  /** The target last scheduled on `gain`; `null` until the first one. */
  scheduled: number | null;
  samples: Float32Array<ArrayBuffer>;
}

/** One publication's gain, for tests and diagnostics. */
export interface GainReading {
  /** The target from the routing (0 when not routed). */
  target: number;
  /** The gain node's value now (mid-ramp values included). */
  current: number;
  /** RMS level after the gain (0 … 1), over the analyser's last window. */
  level: number;
}

function rms(analyser: AnalyserNode, buffer: Float32Array<ArrayBuffer>): number {
  analyser.getFloatTimeDomainData(buffer);
  let sum = 0;
  for (const s of buffer) sum += s * s;
  return Math.min(1, Math.sqrt(sum / buffer.length));
}

export class AudioMixer {
  private readonly ctx: AudioContext | null;
  private readonly channels = new Map<string, Channel>();
  private routing: RoutingMessage | null = null;

  constructor() {
    let ctx: AudioContext | null = null;
    try {
      ctx = audioContext();
    } catch (e) {
      console.warn("dragoman: no Web Audio, remote audio plays without ducking", e);
    }
    this.ctx = ctx;
  }

  /** Whether the graph plays the audio (else the media elements must). */
  get available(): boolean {
    return this.ctx !== null;
  }

  get contextState(): AudioContextState | "none" {
    return this.ctx?.state ?? "none";
  }

  /** Makes the graph hold exactly these tracks (publication id → received track). */
  setTracks(tracks: ReadonlyMap<string, MediaStreamTrack>): void {
    const ctx = this.ctx;
    if (ctx === null) return;
    let added = false;
    for (const [id, channel] of this.channels) {
      if (tracks.get(id) !== channel.track) {
        this.disconnect(channel);
        this.channels.delete(id);
      }
    }
    for (const [id, track] of tracks) {
      if (this.channels.has(id)) continue;
      const source = ctx.createMediaStreamSource(new MediaStream([track]));
      const gain = ctx.createGain();
      gain.gain.value = 0;
      const analyser = ctx.createAnalyser();
      analyser.fftSize = 1024;
      const input = ctx.createAnalyser();
      input.fftSize = 1024;
      input.smoothingTimeConstant = 0.3;
      source.connect(gain).connect(analyser).connect(ctx.destination);
      source.connect(input);
      this.channels.set(id, {
        track,
        source,
        gain,
        analyser,
        input,
        scheduled: null,
        samples: new Float32Array(analyser.fftSize),
      });
      added = true;
    }
    if (added) this.apply();
  }

  /** A new `routing` message: ramp every gain to its new target. */
  setRouting(routing: RoutingMessage | null): void {
    this.routing = routing;
    this.apply();
  }

  private apply(): void {
    const ctx = this.ctx;
    if (ctx === null) return;
    const targets = gainTargets(this.routing, this.channels.keys());
    const rampMs = this.routing?.ramp_ms ?? 0;
    const now = ctx.currentTime;
    for (const [id, channel] of this.channels) {
      const target = targets.get(id) ?? 0;
      const step = planGain(channel.scheduled, target, rampMs);
      const param = channel.gain.gain;
      switch (step.kind) {
        case "keep":
          continue;
        case "set":
          param.cancelScheduledValues(now);
          param.setValueAtTime(step.to, now);
          break;
        case "ramp": {
          // Read before cancelling: mid-ramp, `value` is where the running ramp has got to.
          const from = step.from ?? param.value;
          param.cancelScheduledValues(now);
          param.setValueAtTime(from, now);
          param.linearRampToValueAtTime(step.to, now + step.seconds);
          break;
        }
      }
      channel.scheduled = target;
    }
  }

  /** Every publication in the graph: target, live gain value, level. */
  gains(): Record<string, GainReading> {
    const out: Record<string, GainReading> = {};
    for (const [id, channel] of this.channels) {
      out[id] = {
        target: channel.scheduled ?? 0,
        current: channel.gain.gain.value,
        level: rms(channel.analyser, channel.samples),
      };
    }
    return out;
  }

  /**
   * How loud each publication arrives, before its gain (RMS, 0 … 1): for the speaker highlight,
   * since a remote track's `audioLevel` stats stay 0 while its media element is muted.
   */
  inputLevels(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [id, channel] of this.channels) out.set(id, rms(channel.input, channel.samples));
    return out;
  }

  private disconnect(channel: Channel): void {
    channel.source.disconnect();
    channel.gain.disconnect();
    channel.analyser.disconnect();
    channel.input.disconnect();
  }
}
