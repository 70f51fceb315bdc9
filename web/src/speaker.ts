/**
 * Active-speaker choice from audio levels (0 … 1, as `RTCRtpSynchronizationSource.audioLevel` or an
 * AnalyserNode RMS gives them), sampled a few times a second per participant.
 *
 * Levels are smoothed; the loudest participant above a threshold becomes the speaker, and stays the
 * speaker for a hold time after falling quiet or until someone else is clearly louder, so the
 * highlight does not flicker between syllables. Pure: time is passed in.
 */

export interface SpeakerOptions {
  /** Smoothed level above which a participant counts as speaking. */
  threshold: number;
  /** How long the speaker keeps the highlight after falling below the threshold, ms. */
  holdMs: number;
  /** How much louder (factor) a challenger must be to take over from a speaking speaker. */
  switchFactor: number;
  /** Weight of the newest sample in the moving average, 0 … 1. */
  smoothing: number;
}

export const DEFAULT_SPEAKER_OPTIONS: SpeakerOptions = {
  threshold: 0.02,
  holdMs: 1200,
  switchFactor: 1.5,
  smoothing: 0.5,
};

export class SpeakerDetector {
  private readonly smoothed = new Map<string, number>();
  private speaker: string | null = null;
  private speakerLastLoudAt = 0;

  constructor(private readonly options: SpeakerOptions = DEFAULT_SPEAKER_OPTIONS) {}

  /** The current speaker, or null. */
  get current(): string | null {
    return this.speaker;
  }

  /**
   * Feeds one sample per participant (missing participants are forgotten) and returns the
   * active speaker.
   */
  update(levels: ReadonlyMap<string, number>, nowMs: number): string | null {
    const { threshold, holdMs, switchFactor, smoothing } = this.options;
    for (const id of [...this.smoothed.keys()]) {
      if (!levels.has(id)) this.smoothed.delete(id);
    }
    let loudest: string | null = null;
    let loudestLevel = 0;
    for (const [id, raw] of levels) {
      const level = Number.isFinite(raw) ? Math.min(Math.max(raw, 0), 1) : 0;
      const prev = this.smoothed.get(id) ?? 0;
      const s = smoothing * level + (1 - smoothing) * prev;
      this.smoothed.set(id, s);
      if (s > loudestLevel) {
        loudest = id;
        loudestLevel = s;
      }
    }

    if (this.speaker !== null && !levels.has(this.speaker)) {
      this.speaker = null;
    }
    const currentLevel = this.speaker === null ? 0 : (this.smoothed.get(this.speaker) ?? 0);
    if (this.speaker !== null && currentLevel >= threshold) {
      this.speakerLastLoudAt = nowMs;
    }

    if (loudest !== null && loudestLevel >= threshold && loudest !== this.speaker) {
      const speakerStillLoud = this.speaker !== null && currentLevel >= threshold;
      if (!speakerStillLoud || loudestLevel >= currentLevel * switchFactor) {
        this.speaker = loudest;
        this.speakerLastLoudAt = nowMs;
        return this.speaker;
      }
    }
    if (this.speaker !== null && nowMs - this.speakerLastLoudAt > holdMs) {
      this.speaker = null;
    }
    return this.speaker;
  }
}
