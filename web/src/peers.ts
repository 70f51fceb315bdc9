/**
 * The two WebRTC transports of a participant (docs/protocol.md §4):
 * - {@link PublisherConnection}: send-only; this client offers, the SFU answers. The camera goes out
 *   as three simulcast layers (q, h, f), the microphone as one Opus track.
 * - {@link SubscriberConnection}: receive-only; the SFU offers, this client answers, one offer at a
 *   time.
 * Local ICE candidates are trickled as `candidate` messages, but only after the offer (publisher) or
 * the answer (subscriber) has gone out, so the server always has the description first.
 */
import type { ClientMessage, IceServerInfo, ServerMessage, TrackInfo, TransportKind } from "./protocol";

/** What the peer connections need from the signaling connection of the moment. */
export interface Signaller {
  send(message: ClientMessage): void;
  request(message: ClientMessage): Promise<ServerMessage>;
}

/** Simulcast layers, lowest first, as `publish` declares them. */
export const SIMULCAST_ENCODINGS: RTCRtpEncodingParameters[] = [
  { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "f", maxBitrate: 1_500_000 },
];
export const SIMULCAST_LAYERS = ["q", "h", "f"];

function rtcConfig(iceServers: IceServerInfo[]): RTCConfiguration {
  return {
    iceServers: iceServers.map((s) => ({ urls: s.urls, username: s.username, credential: s.credential })),
    bundlePolicy: "max-bundle",
    rtcpMuxPolicy: "require",
  };
}

/** Holds local candidates until the description they belong to has been sent. */
class CandidateTrickle {
  private held: RTCIceCandidateInit[] = [];
  private open = false;

  constructor(
    pc: RTCPeerConnection,
    private readonly transport: TransportKind,
    private readonly signaller: Signaller,
  ) {
    pc.onicecandidate = (event) => {
      if (event.candidate === null || event.candidate.candidate === "") return;
      const init = event.candidate.toJSON();
      if (this.open) this.sendOne(init);
      else this.held.push(init);
    };
  }

  /** The description went out: send what was held and every later candidate at once. */
  release(): void {
    this.open = true;
    const held = this.held;
    this.held = [];
    for (const c of held) this.sendOne(c);
  }

  private sendOne(candidate: RTCIceCandidateInit): void {
    this.signaller.send({ type: "candidate", transport: this.transport, candidate });
  }
}

function expectType<T extends ServerMessage["type"]>(
  m: ServerMessage,
  type: T,
): Extract<ServerMessage, { type: T }> {
  if (m.type !== type) throw new Error(`expected ${type}, got ${m.type}`);
  return m as Extract<ServerMessage, { type: T }>;
}

export class PublisherConnection {
  readonly pc: RTCPeerConnection;
  private readonly trickle: CandidateTrickle;
  private audio: RTCRtpTransceiver | null = null;
  private video: RTCRtpTransceiver | null = null;

  constructor(
    iceServers: IceServerInfo[],
    private readonly signaller: Signaller,
  ) {
    this.pc = new RTCPeerConnection(rtcConfig(iceServers));
    this.trickle = new CandidateTrickle(this.pc, "publisher", signaller);
  }

  /** Adds the local tracks as send-only transceivers (video with simulcast). */
  addTracks(audio: MediaStreamTrack | null, video: MediaStreamTrack | null): void {
    const stream = new MediaStream([audio, video].filter((t): t is MediaStreamTrack => t !== null));
    if (audio !== null) {
      this.audio = this.pc.addTransceiver(audio, { direction: "sendonly", streams: [stream] });
    }
    if (video !== null) {
      this.video = this.pc.addTransceiver(video, {
        direction: "sendonly",
        streams: [stream],
        sendEncodings: SIMULCAST_ENCODINGS.map((e) => ({ ...e })),
      });
    }
  }

  /** Offers, applies the SFU's answer, then starts trickling candidates. */
  async negotiate(): Promise<void> {
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);
    const sdp = this.pc.localDescription?.sdp ?? offer.sdp ?? "";
    const reply = this.signaller.request({ type: "offer", transport: "publisher", sdp });
    this.trickle.release();
    const answer = expectType(await reply, "answer");
    await this.pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
  }

  /**
   * The `publish` track descriptions for the negotiated transceivers; the microphone goes out on
   * `audioChannel` (`floor`, or an interpreter's language channel).
   */
  tracks(audioChannel = "floor"): TrackInfo[] {
    const out: TrackInfo[] = [];
    if (this.audio?.mid) {
      out.push({ mid: this.audio.mid, kind: "audio", source: "microphone", channel: audioChannel });
    }
    if (this.video?.mid) {
      out.push({ mid: this.video.mid, kind: "video", source: "camera", layers: SIMULCAST_LAYERS });
    }
    return out;
  }

  /** Swaps the sent track of one kind (e.g. another camera) without renegotiation. */
  async replaceTrack(kind: "audio" | "video", track: MediaStreamTrack | null): Promise<void> {
    const tx = kind === "audio" ? this.audio : this.video;
    if (tx !== null) await tx.sender.replaceTrack(track);
  }

  close(): void {
    this.pc.onicecandidate = null;
    this.pc.close();
  }
}

export type TrackHandler = (mid: string | null, track: MediaStreamTrack) => void;

export class SubscriberConnection {
  readonly pc: RTCPeerConnection;
  private readonly trickle: CandidateTrickle;
  /** Offers are applied one at a time, in arrival order. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    iceServers: IceServerInfo[],
    private readonly signaller: Signaller,
    onTrack: TrackHandler,
  ) {
    this.pc = new RTCPeerConnection(rtcConfig(iceServers));
    this.trickle = new CandidateTrickle(this.pc, "subscriber", signaller);
    this.pc.ontrack = (event) => onTrack(event.transceiver.mid, event.track);
  }

  /** Applies a server offer and sends the answer. Resolves when the server accepted it. */
  handleOffer(sdp: string): Promise<void> {
    const run = async (): Promise<void> => {
      await this.pc.setRemoteDescription({ type: "offer", sdp });
      const answer = await this.pc.createAnswer();
      await this.pc.setLocalDescription(answer);
      const local = this.pc.localDescription?.sdp ?? answer.sdp ?? "";
      const reply = this.signaller.request({ type: "answer", transport: "subscriber", sdp: local });
      this.trickle.release();
      expectType(await reply, "ok");
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /**
   * Current audio level (0 … 1) of each receiving audio track, by `mid`. Uses the receiver's
   * synchronization sources (from the RTP audio-level extension) when the sender provides them, and
   * the decoder's level from `getStats()` otherwise.
   */
  async audioLevels(maxAgeMs = 1000): Promise<Map<string, number>> {
    const levels = new Map<string, number>();
    const byTrack = new Map<string, string>();
    const wallNow = Date.now();
    const perfNow = performance.now();
    let needStats = false;
    for (const tx of this.pc.getTransceivers()) {
      if (tx.mid === null || tx.receiver.track.kind !== "audio") continue;
      byTrack.set(tx.receiver.track.id, tx.mid);
      let level: number | null = null;
      for (const src of tx.receiver.getSynchronizationSources()) {
        // `timestamp` is on the wall clock in Chromium and on the performance clock per spec.
        const fresh = Math.abs(wallNow - src.timestamp) <= maxAgeMs || Math.abs(perfNow - src.timestamp) <= maxAgeMs;
        if (fresh && typeof src.audioLevel === "number") level = Math.max(level ?? 0, src.audioLevel);
      }
      if (level === null) needStats = true;
      else levels.set(tx.mid, level);
    }
    if (!needStats) return levels;
    const report = await this.pc.getStats();
    report.forEach((stat: Record<string, unknown>) => {
      if (stat.type !== "inbound-rtp" || stat.kind !== "audio" || typeof stat.audioLevel !== "number") return;
      const mid = typeof stat.mid === "string" ? stat.mid : byTrack.get(String(stat.trackIdentifier));
      if (mid !== undefined && !levels.has(mid)) levels.set(mid, stat.audioLevel);
    });
    return levels;
  }

  close(): void {
    this.pc.onicecandidate = null;
    this.pc.ontrack = null;
    this.pc.close();
  }
}
