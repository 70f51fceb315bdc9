/**
 * The in-call tile grid: one tile per participant (self-view first), each with video, name, role,
 * a network-quality badge and, for others, a "hide video" / "show video" toggle. `sync` makes the
 * DOM match a list of views (idempotent: call it after any change). Each audio publication has one
 * hidden `<audio>`: muted when the Web Audio graph plays the sound (`audiograph.ts`; Chromium needs
 * the element for the track to flow), playing otherwise.
 *
 * Stable hooks: `.tile[data-participant=ID]` with `.name`, `.role`, `.quality`, `.toggle-video`;
 * `data-speaking`, `data-video` (`live`, `waiting`, `hidden`, `off`, `none`) on the tile.
 */
import type { QualityEntry } from "../protocol";
import { h, setData, setText } from "./dom";

export interface TileView {
  participant: string;
  name: string;
  role: string;
  self: boolean;
  /** The user wants this participant's video (always true for self). */
  videoVisible: boolean;
  /** The participant publishes video (for self: the camera is open). */
  hasVideo: boolean;
  /** Self only: the camera is switched off. */
  cameraOff: boolean;
  /** Self only: the microphone is muted. */
  muted: boolean;
  videoTrack: MediaStreamTrack | null;
  /** Audio tracks to play, by publication id (empty for self). */
  audioTracks: Map<string, MediaStreamTrack>;
  quality: QualityEntry | undefined;
}

const QUALITY_LABELS: Record<string, string> = {
  excellent: "Excellent",
  good: "Good",
  poor: "Poor",
  lost: "Lost",
  unknown: "—",
};

interface TileParts {
  root: HTMLDivElement;
  video: HTMLVideoElement;
  initials: HTMLSpanElement;
  placeholderText: HTMLSpanElement;
  name: HTMLSpanElement;
  role: HTMLSpanElement;
  quality: HTMLSpanElement;
  mutedBadge: HTMLSpanElement;
  toggle: HTMLButtonElement | null;
  audio: HTMLDivElement;
}

export function initials(name: string): string {
  const words = name.trim().split(/\s+/).filter((w) => w.length > 0);
  const letters = words.length >= 2 ? [words[0], words[words.length - 1]] : words.slice(0, 1);
  return letters
    .map((w) => Array.from(w ?? "")[0] ?? "")
    .join("")
    .toUpperCase();
}

export class TileGrid {
  private readonly tiles = new Map<string, TileParts>();

  constructor(
    private readonly container: HTMLElement,
    private readonly onToggleVideo: (participant: string, visible: boolean) => void,
    /** False when the Web Audio graph plays remote audio: the elements stay muted. */
    private readonly playAudio = true,
  ) {}

  /** Makes the grid show exactly these tiles, in this order. */
  sync(views: TileView[]): void {
    const keep = new Set(views.map((v) => v.participant));
    for (const [id, parts] of this.tiles) {
      if (!keep.has(id)) {
        parts.video.srcObject = null;
        for (const a of parts.audio.querySelectorAll("audio")) a.srcObject = null;
        parts.root.remove();
        this.tiles.delete(id);
      }
    }
    let previous: HTMLElement | null = null;
    for (const view of views) {
      let parts = this.tiles.get(view.participant);
      if (parts === undefined) {
        parts = this.create(view);
        this.tiles.set(view.participant, parts);
      }
      this.update(parts, view);
      const expectedNext: Element | null = previous === null ? this.container.firstElementChild : previous.nextElementSibling;
      if (expectedNext !== parts.root) {
        if (previous === null) this.container.prepend(parts.root);
        else previous.after(parts.root);
      }
      previous = parts.root;
    }
    setData(this.container, "count", String(views.length));
  }

  /** Highlights the active speaker (or nobody). */
  setSpeaking(participant: string | null): void {
    for (const [id, parts] of this.tiles) setData(parts.root, "speaking", String(id === participant));
  }

  private create(view: TileView): TileParts {
    const video = h("video", { autoplay: true, playsinline: true });
    video.muted = true; // sound plays through the <audio> elements
    const initialsEl = h("span", { class: "initials" });
    const placeholderText = h("span", { class: "placeholder-text" });
    const placeholder = h("div", { class: "placeholder" }, initialsEl, placeholderText);
    const media = h("div", { class: "media" }, video, placeholder);
    const name = h("span", { class: "name" });
    const role = h("span", { class: "role" });
    const quality = h("span", { class: "quality", "data-quality": "unknown" });
    const mutedBadge = h("span", { class: "muted-badge", hidden: true }, "Muted");
    const caption = h("div", { class: "caption" }, name, role, mutedBadge, quality);
    let toggle: HTMLButtonElement | null = null;
    if (!view.self) {
      const button = h("button", { type: "button", class: "toggle-video" });
      button.addEventListener("click", () => {
        this.onToggleVideo(view.participant, button.dataset.visible !== "true");
      });
      caption.append(button);
      toggle = button;
    }
    const audio = h("div", { class: "audio-sinks", hidden: true });
    const root = h(
      "div",
      { class: view.self ? "tile self" : "tile", "data-participant": view.participant, "data-speaking": "false" },
      media,
      caption,
      audio,
    );
    return { root, video, initials: initialsEl, placeholderText, name, role, quality, mutedBadge, toggle, audio };
  }

  private update(parts: TileParts, view: TileView): void {
    setData(parts.root, "role", view.role);
    setText(parts.name, view.self ? `${view.name} (you)` : view.name);
    parts.name.title = view.name;
    setText(parts.role, view.role);
    setText(parts.initials, initials(view.name));

    let videoState: "live" | "waiting" | "hidden" | "off" | "none";
    if (view.self) videoState = !view.hasVideo ? "none" : view.cameraOff ? "off" : "live";
    else if (!view.hasVideo) videoState = "none";
    else if (!view.videoVisible) videoState = "hidden";
    else if (view.videoTrack === null) videoState = "waiting";
    else videoState = "live";
    setData(parts.root, "video", videoState);
    setText(
      parts.placeholderText,
      {
        live: "",
        waiting: "Connecting video…",
        hidden: "Video hidden",
        off: "Camera off",
        none: view.self ? "No camera" : "No video",
      }[videoState],
    );

    // Self-view keeps its track while the camera is off (the placeholder covers it).
    const want = view.self ? view.videoTrack : videoState === "live" ? view.videoTrack : null;
    const current = parts.video.srcObject instanceof MediaStream ? parts.video.srcObject.getVideoTracks()[0] : undefined;
    if (want === null) {
      if (current !== undefined) parts.video.srcObject = null;
    } else if (current !== want) {
      parts.video.srcObject = new MediaStream([want]);
    }

    parts.mutedBadge.hidden = !view.muted;

    const q = view.quality?.quality ?? "unknown";
    setData(parts.quality, "quality", q);
    setText(parts.quality, QUALITY_LABELS[q] ?? q);
    const details: string[] = [];
    if (view.quality?.loss_percent !== undefined) details.push(`loss ${view.quality.loss_percent.toFixed(1)} %`);
    if (view.quality?.rtt_ms !== undefined) details.push(`rtt ${Math.round(view.quality.rtt_ms)} ms`);
    parts.quality.title = details.length > 0 ? `Network: ${details.join(", ")}` : "Network quality";

    if (parts.toggle !== null) {
      setData(parts.toggle, "visible", String(view.videoVisible));
      setText(parts.toggle, view.videoVisible ? "Hide video" : "Show video");
      parts.toggle.setAttribute("aria-pressed", String(!view.videoVisible));
      parts.toggle.hidden = !view.hasVideo;
    }

    this.syncAudio(parts.audio, view.audioTracks);
  }

  private syncAudio(sink: HTMLDivElement, tracks: Map<string, MediaStreamTrack>): void {
    const existing = new Map<string, HTMLAudioElement>();
    for (const a of sink.querySelectorAll("audio")) existing.set(a.dataset.publication ?? "", a);
    for (const [pub, el] of existing) {
      if (!tracks.has(pub)) {
        el.srcObject = null;
        el.remove();
      }
    }
    for (const [pub, track] of tracks) {
      let el = existing.get(pub);
      if (el === undefined) {
        el = h("audio", { autoplay: true, "data-publication": pub });
        el.muted = !this.playAudio;
        sink.append(el);
      }
      const current = el.srcObject instanceof MediaStream ? el.srcObject.getAudioTracks()[0] : undefined;
      if (current !== track) {
        el.srcObject = new MediaStream([track]);
        el.play().catch(() => {
          /* autoplay refused until the next user gesture; the join click usually counts */
        });
      }
    }
  }
}
