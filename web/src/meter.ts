/**
 * Audio level of a local track through Web Audio (an AnalyserNode fed by the track): drives the
 * pre-join microphone meter and this participant's own speaking detection. One AudioContext is
 * shared by the page; it is resumed on the first user gesture if the browser started it suspended.
 */

let shared: AudioContext | null = null;

/** The page's AudioContext (created on first use). */
export function audioContext(): AudioContext {
  if (shared === null) {
    shared = new AudioContext();
    const resume = (): void => {
      if (shared?.state === "suspended") void shared.resume();
    };
    document.addEventListener("click", resume, { capture: true });
    document.addEventListener("keydown", resume, { capture: true });
  }
  if (shared.state === "suspended") void shared.resume().catch(() => undefined);
  return shared;
}

export class TrackLevel {
  private readonly source: MediaStreamAudioSourceNode;
  private readonly analyser: AnalyserNode;
  private readonly buffer: Float32Array<ArrayBuffer>;

  constructor(track: MediaStreamTrack) {
    const ctx = audioContext();
    this.source = ctx.createMediaStreamSource(new MediaStream([track]));
    this.analyser = ctx.createAnalyser();
    this.analyser.fftSize = 1024;
    this.analyser.smoothingTimeConstant = 0.3;
    this.buffer = new Float32Array(this.analyser.fftSize);
    this.source.connect(this.analyser);
  }

  /** RMS level of the latest audio, 0 … 1 (a disabled track reads 0). */
  level(): number {
    this.analyser.getFloatTimeDomainData(this.buffer);
    let sum = 0;
    for (const v of this.buffer) sum += v * v;
    return Math.min(1, Math.sqrt(sum / this.buffer.length));
  }

  close(): void {
    this.source.disconnect();
    this.analyser.disconnect();
  }
}

/** Maps an RMS level to a 0 … 1 meter position on a rough dB scale (-60 dB … 0 dB). */
export function meterPosition(rms: number): number {
  if (rms <= 0) return 0;
  const db = 20 * Math.log10(rms);
  return Math.min(1, Math.max(0, (db + 60) / 60));
}
