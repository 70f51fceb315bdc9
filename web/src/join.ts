/**
 * Entry point of the `/join?token=…` page: reads the token, shows who you are and the pre-join
 * check, then runs the call (tiles, controls, connection indicator, speaker highlight) on a
 * {@link Session}. Also exposes the read-only `window.dragoman` handle that tests use.
 */
import { AudioMixer, type GainReading } from "./audiograph";
import { callLanguages } from "./interpretation";
import { type Role, decodeToken, type TokenClaims } from "./jwt";
import type { JoinMode } from "./mediaerrors";
import { TrackLevel } from "./meter";
import { readPageParams } from "./pageparams";
import type { PublicationInfo, RoutingMessage } from "./protocol";
import { Session } from "./session";
import { SpeakerDetector } from "./speaker";
import { byId, h, setText } from "./ui/dom";
import { InterpretationPanel } from "./ui/interpretation";
import { PreJoin, type JoinChoice } from "./ui/prejoin";
import { clearNotice, type ConnectionState, showConnectionState, showNotice } from "./ui/status";
import { TileGrid, type TileView } from "./ui/tiles";

export interface DragomanState {
  connection: ConnectionState;
  callId: string | null;
  participantId: string | null;
  mode: JoinMode | null;
  /** Own live publications. */
  publications: PublicationInfo[];
  /** Publication ids this client is subscribed to. */
  subscriptions: string[];
  tiles: { participant: string; name: string; role: string; videoVisible: boolean }[];
  reconnects: number;
  lastJoinResumed: boolean | null;
}

export interface DragomanHandle {
  state(): DragomanState;
  /** The latest `routing` message (a copy), or null. */
  routing(): RoutingMessage | null;
  /** The Web Audio graph: per received audio publication, its routed target and live gain value. */
  audioGains(): Record<string, GainReading>;
  /** The AudioContext's state (`running`, `suspended`, …; `none` without Web Audio). */
  audioContextState(): string;
  readonly publisherPc: RTCPeerConnection | null;
  readonly subscriberPc: RTCPeerConnection | null;
  readonly signal: WebSocket | null;
}

declare global {
  interface Window {
    dragoman: DragomanHandle;
  }
}

const ROLE_LABELS: Record<Role, string> = {
  company: "Company",
  interpreter: "Interpreter",
  office: "Overseas office",
  buyer: "Buyer",
  operator: "Operator",
};

let session: Session | null = null;
let mixer: AudioMixer | null = null;
let joinMode: JoinMode | null = null;

function exposeHandle(): void {
  const handle: DragomanHandle = {
    state(): DragomanState {
      const s = session;
      return {
        connection: s?.connection ?? "idle",
        callId: s?.state.callId ?? null,
        participantId: s?.state.self?.id ?? null,
        mode: joinMode,
        publications: s === null ? [] : s.ownPublications().map((p) => ({ ...p })),
        subscriptions: s === null ? [] : [...s.state.subscribed].sort(),
        tiles:
          s === null
            ? []
            : s.state.tiles().map((t) => ({
                participant: t.participant,
                name: t.name,
                role: t.role,
                videoVisible: t.videoVisible,
              })),
        reconnects: s?.reconnects ?? 0,
        lastJoinResumed: s?.lastJoinResumed ?? null,
      };
    },
    routing(): RoutingMessage | null {
      const r = session?.routing ?? null;
      return r === null ? null : (JSON.parse(JSON.stringify(r)) as RoutingMessage);
    },
    audioGains(): Record<string, GainReading> {
      return mixer?.gains() ?? {};
    },
    audioContextState(): string {
      return mixer?.contextState ?? "none";
    },
    get publisherPc() {
      return session?.publisher?.pc ?? null;
    },
    get subscriberPc() {
      return session?.subscriber?.pc ?? null;
    },
    get signal() {
      return session?.signal?.socket ?? null;
    },
  };
  Object.defineProperty(window, "dragoman", { value: Object.freeze(handle), configurable: false });
}

function show(section: "token-error" | "prejoin" | "incall" | "left"): void {
  for (const id of ["token-error", "prejoin", "incall", "left"]) byId(id).hidden = id !== section;
  document.body.dataset.view = section;
}

function showIdentity(claims: TokenClaims): void {
  setText(byId("call-title"), claims.call);
  setText(byId("prejoin-call"), claims.call);
  setText(byId("prejoin-name"), claims.name);
  const role = byId("prejoin-role");
  setText(role, ROLE_LABELS[claims.role]);
  role.dataset.role = claims.role;
  setText(byId("prejoin-languages"), claims.languages.length > 0 ? claims.languages.join(", ") : "—");
  document.title = `${claims.call} · Dragoman`;
}

function renderRoster(s: Session): void {
  const others = [...s.state.participants.values()];
  const roster = byId("roster");
  if (s.connection === "failed") {
    roster.replaceChildren("Not connected to the call.");
    return;
  }
  if (s.state.self === null) {
    roster.replaceChildren("Joining the call…");
    return;
  }
  if (others.length === 0) {
    roster.replaceChildren("Nobody else is here yet.");
    return;
  }
  roster.replaceChildren(
    "In the call: ",
    ...others.flatMap((p, i) => [
      ...(i > 0 ? [", "] : []),
      h("span", { class: "roster-name" }, p.name),
      ` (${p.role})`,
    ]),
  );
}

function startCall(claims: TokenClaims, signalUrl: string, token: string, choice: JoinChoice): void {
  joinMode = choice.mode;
  show("incall");
  let muted = false;
  let cameraOff = false;

  // Remote audio plays through Web Audio (gain ramps for ducking), in the page's AudioContext, which
  // the pre-join meter started and any later click or key press resumes if the browser suspended it.
  const audio = new AudioMixer();
  mixer = audio;
  const grid = new TileGrid(byId("tiles"), (participant, visible) => s.setVideoVisible(participant, visible), !audio.available);
  const panel = new InterpretationPanel((message) => s.interpret(message));
  const render = (): void => {
    const st = s.state;
    const selfId = st.self?.id ?? claims.sub;
    const views: TileView[] = [
      {
        participant: selfId,
        name: st.self?.name ?? claims.name,
        role: st.self?.role ?? claims.role,
        self: true,
        videoVisible: true,
        hasVideo: choice.video !== null,
        cameraOff,
        muted: muted || choice.audio === null,
        videoTrack: choice.video,
        audioTracks: new Map(),
        quality: st.quality.get(selfId),
      },
    ];
    for (const t of st.tiles()) {
      const audioTracks = new Map<string, MediaStreamTrack>();
      for (const pub of t.audioPublications) {
        const track = s.trackFor(pub);
        if (track !== null) audioTracks.set(pub, track);
      }
      views.push({
        participant: t.participant,
        name: t.name,
        role: t.role,
        self: false,
        videoVisible: t.videoVisible,
        hasVideo: t.videoPublication !== null,
        cameraOff: false,
        muted: false,
        videoTrack: t.videoPublication === null ? null : s.trackFor(t.videoPublication),
        audioTracks,
        quality: st.quality.get(t.participant),
      });
    }
    grid.sync(views);
    const remoteAudio = new Map<string, MediaStreamTrack>();
    for (const view of views) for (const [pub, track] of view.audioTracks) remoteAudio.set(pub, track);
    audio.setTracks(remoteAudio);
    const others = [...st.participants.values()];
    panel.render(s.routing, st.self, others, callLanguages(st.self, others));
    renderRoster(s);
  };

  const s: Session = new Session({
    signalUrl,
    token,
    audio: choice.audio,
    video: choice.video,
    view: {
      render,
      connectionChanged: (state, detail) => {
        showConnectionState(state, detail);
        if (state === "left") show("left");
        else render();
      },
      routingChanged: (routing) => audio.setRouting(routing),
      notice: (message, kind, action) => showNotice(message, kind, action),
      clearNotice,
    },
  });
  session = s;

  const muteButton = byId<HTMLButtonElement>("mute-button");
  const cameraButton = byId<HTMLButtonElement>("camera-button");
  const updateControls = (): void => {
    muteButton.disabled = choice.audio === null;
    muteButton.textContent = choice.audio === null ? "No microphone" : muted ? "Unmute" : "Mute";
    muteButton.setAttribute("aria-pressed", String(muted));
    cameraButton.disabled = choice.video === null;
    cameraButton.textContent = choice.video === null ? "No camera" : cameraOff ? "Start camera" : "Stop camera";
    cameraButton.setAttribute("aria-pressed", String(cameraOff));
  };
  muteButton.addEventListener("click", () => {
    if (choice.audio === null) return;
    muted = !muted;
    // The publication stays; the SFU keeps forwarding silence.
    choice.audio.enabled = !muted;
    updateControls();
    render();
  });
  cameraButton.addEventListener("click", () => {
    if (choice.video === null) return;
    cameraOff = !cameraOff;
    choice.video.enabled = !cameraOff;
    updateControls();
    render();
  });
  byId("leave-button").addEventListener("click", () => void s.leave());
  byId("rejoin-button").addEventListener("click", () => window.location.reload());
  updateControls();

  // Active speaker: remote levels from the receivers, own level from the microphone.
  const detector = new SpeakerDetector();
  let ownLevel: TrackLevel | null = null;
  if (choice.audio !== null) {
    try {
      ownLevel = new TrackLevel(choice.audio);
    } catch {
      ownLevel = null;
    }
  }
  // With Web Audio playing, remote levels come from the graph (muted elements report no level).
  const mixerLevels = (): Map<string, number> => {
    const levels = new Map<string, number>();
    for (const [pub, level] of audio.inputLevels()) {
      const who = s.state.publications.get(pub)?.participant;
      if (who !== undefined) levels.set(who, Math.max(level, levels.get(who) ?? 0));
    }
    return levels;
  };
  let sampling = false;
  setInterval(() => {
    if (s.connection === "left" || s.connection === "failed") {
      grid.setSpeaking(null);
      return;
    }
    if (sampling) return;
    sampling = true;
    const remoteLevels = audio.available ? Promise.resolve(mixerLevels()) : s.remoteAudioLevels();
    void remoteLevels
      .catch(() => new Map<string, number>())
      .then((levels) => {
        const selfId = s.state.self?.id ?? claims.sub;
        levels.set(selfId, ownLevel !== null && !muted ? ownLevel.level() : 0);
        grid.setSpeaking(detector.update(levels, performance.now()));
      })
      .finally(() => {
        sampling = false;
      });
  }, 250);

  window.addEventListener("pagehide", () => s.leaveOnUnload());

  render();
  s.start();
}

function main(): void {
  exposeHandle();
  showConnectionState("idle");
  const params = readPageParams(window.location);
  const decoded = decodeToken(params.token, Math.floor(Date.now() / 1000));
  if (!decoded.ok) {
    show("token-error");
    setText(byId("token-error-message"), decoded.message);
    byId("token-error").dataset.problem = decoded.problem;
    return;
  }
  if (params.signalOverrideRejected) {
    showNotice("The ?signal= parameter is not a ws:// or wss:// URL; using this server instead.", "warning");
  }
  const claims = decoded.claims;
  showIdentity(claims);
  const token = params.token ?? "";
  if (claims.role === "operator") {
    // Operators are hidden and never publish: no device check, straight in to watch and listen.
    startCall(claims, params.signalUrl, token, { mode: "listen-only", audio: null, video: null });
    return;
  }
  show("prejoin");
  const prejoin = new PreJoin((choice) => startCall(claims, params.signalUrl, token, choice));
  void prejoin.check();
}

main();
