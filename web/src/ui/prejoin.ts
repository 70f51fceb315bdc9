/**
 * The pre-join check: opens camera and microphone, fills the pickers, shows a live preview and a
 * microphone level meter, explains a denied or missing device, and offers the ways in that still
 * work (full, audio-only, listen-only). Hands the chosen tracks to the caller on "Join".
 *
 * Hooks: `#camera-select`, `#mic-select`, `#preview`, `#mic-level` (`data-level` 0 … 1),
 * `#device-error`, `#join-button`, `#join-audio-only`, `#join-listen-only`, `#retry-devices`.
 */
import { listDevices, openDevice, openLocalTracks, stopTracks } from "../devices";
import { bestMode, describeProblem, type DeviceProblem, type JoinMode } from "../mediaerrors";
import { meterPosition, TrackLevel } from "../meter";
import { byId, h, setData } from "./dom";

export interface JoinChoice {
  mode: JoinMode;
  audio: MediaStreamTrack | null;
  video: MediaStreamTrack | null;
}

const JOIN_LABELS: Record<JoinMode, string> = {
  full: "Join call",
  "audio-only": "Join audio-only",
  "listen-only": "Join to listen only",
};

export class PreJoin {
  private audio: MediaStreamTrack | null = null;
  private video: MediaStreamTrack | null = null;
  private audioProblem: DeviceProblem | null = null;
  private videoProblem: DeviceProblem | null = null;
  private level: TrackLevel | null = null;
  private meterTimer: ReturnType<typeof setInterval> | null = null;
  private meterShown = 0;
  private done = false;

  private readonly cameraSelect = byId<HTMLSelectElement>("camera-select");
  private readonly micSelect = byId<HTMLSelectElement>("mic-select");
  private readonly preview = byId<HTMLVideoElement>("preview");
  private readonly meter = byId("mic-level");
  private readonly errorBox = byId("device-error");
  private readonly joinButton = byId<HTMLButtonElement>("join-button");
  private readonly audioOnlyButton = byId<HTMLButtonElement>("join-audio-only");
  private readonly listenOnlyButton = byId<HTMLButtonElement>("join-listen-only");

  constructor(private readonly onJoin: (choice: JoinChoice) => void) {
    this.cameraSelect.addEventListener("change", () => void this.switchDevice("video", this.cameraSelect.value));
    this.micSelect.addEventListener("change", () => void this.switchDevice("audio", this.micSelect.value));
    byId("retry-devices").addEventListener("click", () => void this.check());
    this.joinButton.addEventListener("click", () => this.finish(this.mode()));
    this.audioOnlyButton.addEventListener("click", () => this.finish("audio-only"));
    this.listenOnlyButton.addEventListener("click", () => this.finish("listen-only"));
    navigator.mediaDevices?.addEventListener("devicechange", () => void this.fillPickers());
  }

  /** Opens the devices (again) and updates everything shown. */
  async check(): Promise<void> {
    this.joinButton.disabled = true;
    this.joinButton.textContent = "Checking camera and microphone…";
    stopTracks(this.audio, this.video);
    const tracks = await openLocalTracks({
      audioDeviceId: this.micSelect.value || undefined,
      videoDeviceId: this.cameraSelect.value || undefined,
    });
    if (this.done) {
      stopTracks(tracks.audio, tracks.video);
      return;
    }
    this.audio = tracks.audio;
    this.video = tracks.video;
    this.audioProblem = tracks.audioProblem;
    this.videoProblem = tracks.videoProblem;
    await this.fillPickers();
    this.attach();
  }

  private mode(): JoinMode {
    return bestMode(this.audio !== null, this.video !== null);
  }

  private async switchDevice(kind: "audio" | "video", deviceId: string): Promise<void> {
    const old = kind === "audio" ? this.audio : this.video;
    if (old !== null && old.getSettings().deviceId === deviceId) return;
    stopTracks(old);
    const { track, problem } = await openDevice(kind, deviceId || undefined);
    if (this.done) {
      stopTracks(track);
      return;
    }
    if (kind === "audio") {
      this.audio = track;
      this.audioProblem = problem;
    } else {
      this.video = track;
      this.videoProblem = problem;
    }
    this.attach();
  }

  private async fillPickers(): Promise<void> {
    const { cameras, microphones } = await listDevices();
    fill(this.cameraSelect, cameras, this.video, "No camera found");
    fill(this.micSelect, microphones, this.audio, "No microphone found");
  }

  /** Shows the current tracks: preview, meter, problems, join options. */
  private attach(): void {
    this.preview.srcObject = this.video === null ? null : new MediaStream([this.video]);
    setData(byId("prejoin"), "camera", this.video === null ? "off" : "on");

    this.level?.close();
    this.level = null;
    if (this.audio !== null) {
      try {
        this.level = new TrackLevel(this.audio);
      } catch (e) {
        console.warn("dragoman: no audio level meter", e);
      }
    }
    if (this.meterTimer === null) this.meterTimer = setInterval(() => this.tickMeter(), 100);

    const problems: string[] = [];
    if (this.videoProblem !== null) problems.push(describeProblem("camera", this.videoProblem));
    if (this.audioProblem !== null) problems.push(describeProblem("microphone", this.audioProblem));
    const mode = this.mode();
    if (problems.length > 0) {
      if (mode === "audio-only") problems.push("You can still join with your microphone only.");
      if (mode === "listen-only") problems.push("You can still join to watch and listen.");
    }
    const message = this.errorBox.querySelector(".message");
    message?.replaceChildren(...problems.map((p) => h("p", {}, p)));
    this.errorBox.hidden = problems.length === 0;

    this.joinButton.disabled = false;
    this.joinButton.textContent = JOIN_LABELS[mode];
    this.audioOnlyButton.hidden = mode !== "full";
    this.listenOnlyButton.hidden = mode === "listen-only";
  }

  private tickMeter(): void {
    const rms = this.level?.level() ?? 0;
    // Rise at once, fall slowly, so short sounds stay readable.
    const pos = Math.max(meterPosition(rms), this.meterShown - 0.04);
    this.meterShown = pos;
    this.meter.style.setProperty("--level", pos.toFixed(3));
    this.meter.dataset.level = pos.toFixed(2);
    this.meter.setAttribute("aria-valuenow", pos.toFixed(2));
  }

  private finish(mode: JoinMode): void {
    if (this.done) return;
    this.done = true;
    if (this.meterTimer !== null) clearInterval(this.meterTimer);
    this.level?.close();
    this.preview.srcObject = null;
    let audio = this.audio;
    let video = this.video;
    if (mode !== "full") {
      stopTracks(video);
      video = null;
    }
    if (mode === "listen-only") {
      stopTracks(audio);
      audio = null;
    }
    this.onJoin({ mode, audio, video });
  }
}

function fill(select: HTMLSelectElement, devices: MediaDeviceInfo[], current: MediaStreamTrack | null, none: string): void {
  const currentId = current?.getSettings().deviceId;
  const options = devices.map((d, i) =>
    h("option", { value: d.deviceId }, d.label || `${d.kind === "videoinput" ? "Camera" : "Microphone"} ${i + 1}`),
  );
  if (options.length === 0) options.push(h("option", { value: "" }, none));
  select.replaceChildren(...options);
  select.disabled = devices.length === 0;
  if (currentId !== undefined && devices.some((d) => d.deviceId === currentId)) select.value = currentId;
}
