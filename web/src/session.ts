/**
 * One participant's presence in a call, across reconnects: joins over signaling, publishes the local
 * microphone and camera on the publisher transport, answers the SFU's offers on the subscriber
 * transport, keeps subscriptions equal to what the user wants to see, and recovers from a lost
 * socket with backoff. On a resumed session (`joined.resumed`) the peer connections carry on; on a
 * fresh one they are rebuilt, publications and subscriptions restored. A failed media path is
 * rebuilt by leaving and joining again. The session never reloads the page.
 *
 * It owns no DOM: it reports through {@link SessionView}.
 */
import { Backoff, CLOSE_LEFT, CLOSE_REPLACED, CLOSE_TOKEN_REFUSED, shouldReconnect } from "./backoff";
import { CallState } from "./callstate";
import { publishChannel } from "./interpretation";
import { PublisherConnection, type Signaller, SubscriberConnection } from "./peers";
import type {
  ClientMessage,
  IceServerInfo,
  JoinedMessage,
  PublicationInfo,
  RoutingMessage,
  ServerMessage,
} from "./protocol";
import { SignalClient, SignalError } from "./signaling";
import type { ConnectionState } from "./ui/status";

/** What the session tells the page. */
export interface SessionView {
  /** The call state changed in a way the tiles may show. */
  render(): void;
  connectionChanged(state: ConnectionState, detail?: string): void;
  /** A `routing` message arrived (or the routing was forgotten: `null`). */
  routingChanged(routing: RoutingMessage | null): void;
  /** A message for the user, optionally with a button (e.g. "Try again"). */
  notice(message: string, kind: "info" | "warning" | "error", action?: { label: string; run(): void }): void;
  clearNotice(): void;
}

export interface SessionOptions {
  signalUrl: string;
  token: string;
  audio: MediaStreamTrack | null;
  video: MediaStreamTrack | null;
  view: SessionView;
}

/** How long a media transport may stay disconnected before it is rebuilt. */
const MEDIA_STALL_MS = 10_000;
/** How long a new publisher transport may take to connect. */
const MEDIA_CONNECT_MS = 15_000;

export class Session {
  readonly state = new CallState();
  connection: ConnectionState = "idle";
  signal: SignalClient | null = null;
  publisher: PublisherConnection | null = null;
  subscriber: SubscriberConnection | null = null;
  /** Received tracks by subscriber `mid`. */
  readonly tracksByMid = new Map<string, MediaStreamTrack>();
  /** The latest `routing` message: what the server forwards to us and at which gains. */
  routing: RoutingMessage | null = null;
  /** Successful joins after the first one, and whether the last one resumed. */
  reconnects = 0;
  lastJoinResumed: boolean | null = null;

  private readonly backoff = new Backoff();
  private readonly opts: SessionOptions;
  private iceServers: IceServerInfo[] = [];
  /** Bumped for every connection attempt; late callbacks of older ones are ignored. */
  private generation = 0;
  private everJoined = false;
  /** True between `joined` and the socket's close. */
  private inCall = false;
  private setupDone = false;
  /** Every local track has been published on the current publisher transport. */
  private publishComplete = false;
  private leaving = false;
  private stopped = false;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private mediaTimer: ReturnType<typeof setTimeout> | null = null;
  private reconciling = false;
  private reconcileAgain = false;
  private reconcileRetries = 0;
  /** The server's reason for refusing the token, shown when it closes with 4001. */
  private tokenMessage: string | null = null;

  /** Peer connections reach the server through whichever socket is current. */
  private readonly signaller: Signaller = {
    send: (m: ClientMessage) => this.signal?.send(m),
    request: (m: ClientMessage) =>
      this.signal !== null
        ? this.signal.request(m)
        : Promise.reject(new SignalError("not_connected", "the signaling connection is closed")),
  };

  constructor(opts: SessionOptions) {
    this.opts = opts;
  }

  get audioTrack(): MediaStreamTrack | null {
    return this.opts.audio;
  }

  get videoTrack(): MediaStreamTrack | null {
    return this.opts.video;
  }

  start(): void {
    void this.connect();
  }

  /** Tries again after `failed` (the user pressed the button). */
  retry(): void {
    if (this.leaving) return;
    this.stopped = false;
    this.backoff.reset();
    this.clearRetry();
    void this.connect();
  }

  /** Leaves the call: `leave`, then everything is closed. Local tracks are stopped. */
  async leave(): Promise<void> {
    if (this.leaving) return;
    this.leaving = true;
    this.clearRetry();
    const signal = this.signal;
    if (signal?.isOpen) {
      try {
        await signal.request({ type: "leave" }, 3000);
      } catch {
        /* closing anyway */
      }
      signal.close(1000, "left");
    }
    this.generation++;
    this.signal = null;
    this.inCall = false;
    this.teardownTransports();
    this.opts.audio?.stop();
    this.opts.video?.stop();
    this.setConnection("left");
  }

  /**
   * The page is going away (tab closed, reload): say `leave` without waiting, so the others see
   * the participant go at once instead of after the server's reconnect grace period.
   */
  leaveOnUnload(): void {
    if (this.leaving) return;
    this.leaving = true;
    this.clearRetry();
    this.signal?.send({ type: "leave" });
  }

  /** The user hid or showed a participant's video: the SFU stops or resumes sending it. */
  setVideoVisible(participant: string, visible: boolean): void {
    this.state.setVideoHidden(participant, !visible);
    this.opts.view.render();
    void this.reconcile();
  }

  /** The remote track carrying a publication, if it has arrived. */
  trackFor(publication: string): MediaStreamTrack | null {
    for (const [mid, pub] of this.state.mids) {
      if (pub === publication) return this.tracksByMid.get(mid) ?? null;
    }
    return null;
  }

  /**
   * Sends an interpretation request (`set_language`, `switch_direction`, …). The server answers
   * `ok` and then the `routing` it causes; a refusal is shown as a notice. Resolves to whether it
   * was accepted.
   */
  async interpret(message: ClientMessage): Promise<boolean> {
    if (!this.inCall) {
      this.opts.view.notice("Not connected to the call: try again in a moment.", "warning");
      return false;
    }
    try {
      await this.signaller.request(message);
      return true;
    } catch (e) {
      const text = e instanceof SignalError ? `${e.message} (${e.code})` : errorText(e);
      this.opts.view.notice(`The server refused "${message.type}": ${text}`, "warning");
      return false;
    }
  }

  /** Audio levels of received audio, by participant (for the speaker highlight). */
  async remoteAudioLevels(): Promise<Map<string, number>> {
    const levels = new Map<string, number>();
    if (this.subscriber === null) return levels;
    for (const [mid, level] of await this.subscriber.audioLevels()) {
      const pub = this.state.publicationForMid(mid);
      if (pub === undefined || !this.state.subscribed.has(pub.id)) continue;
      levels.set(pub.participant, Math.max(level, levels.get(pub.participant) ?? 0));
    }
    return levels;
  }

  // --- connecting -------------------------------------------------------------------------------

  private async connect(): Promise<void> {
    if (this.leaving || this.stopped) return;
    const gen = ++this.generation;
    this.inCall = false;
    this.setupDone = false;
    this.setConnection(this.everJoined ? "reconnecting" : "connecting");
    let signal: SignalClient;
    try {
      signal = await SignalClient.connect(this.opts.signalUrl, {
        onMessage: (m) => this.onPush(gen, m),
        onClose: (code, reason) => this.onClose(gen, code, reason),
      });
    } catch {
      if (gen === this.generation) this.scheduleReconnect();
      return;
    }
    if (gen !== this.generation) {
      signal.close();
      return;
    }
    this.signal = signal;
    let joined: ServerMessage;
    try {
      joined = await signal.request({ type: "join", token: this.opts.token });
    } catch (e) {
      if (gen !== this.generation) return;
      this.joinFailed(signal, e);
      return;
    }
    if (gen !== this.generation || joined.type !== "joined") return;
    await this.onJoined(gen, joined);
  }

  private joinFailed(signal: SignalClient, e: unknown): void {
    if (e instanceof SignalError && (e.code === "invalid_token" || e.code === "token_expired")) {
      // The server closes with 4001 next; onClose reports it.
      this.tokenMessage = e.message;
      return;
    }
    if (e instanceof SignalError && e.code === "call_full") {
      this.opts.view.notice(`The call is full: ${e.message}. Trying again…`, "warning");
    }
    signal.close(4000, "join failed");
  }

  private async onJoined(gen: number, joined: JoinedMessage): Promise<void> {
    const { resumed } = this.state.applyJoined(joined);
    this.iceServers = joined.ice_servers;
    this.inCall = true;
    this.lastJoinResumed = resumed;
    if (this.everJoined) this.reconnects++;
    this.everJoined = true;
    this.reconcileRetries = 0;
    this.opts.view.clearNotice();

    const needPublisher = this.opts.audio !== null || this.opts.video !== null;
    const transportsIntact = !needPublisher || (this.publisher !== null && this.publishComplete);
    if (resumed && !transportsIntact) {
      // The server kept a session whose setup this page never finished (or no longer has the
      // transports for): start clean rather than guess what the server holds.
      void this.restartFresh("resumed an unfinished session");
      return;
    }
    if (!resumed) {
      this.teardownTransports();
      this.state.resetTransports();
    }
    this.opts.view.render();
    void this.reconcile();
    if (!resumed && needPublisher) {
      try {
        await this.startPublishing(gen);
      } catch (e) {
        if (gen !== this.generation) return;
        console.warn("dragoman: publishing failed", e);
        void this.restartFresh(`publishing failed: ${errorText(e)}`);
        return;
      }
    }
    if (gen !== this.generation) return;
    this.setupDone = true;
    this.updateMediaState();
  }

  private async startPublishing(gen: number): Promise<void> {
    const publisher = new PublisherConnection(this.iceServers, this.signaller);
    this.publisher = publisher;
    publisher.pc.addEventListener("connectionstatechange", () => {
      if (this.publisher === publisher) this.updateMediaState();
    });
    publisher.addTracks(this.opts.audio, this.opts.video);
    await publisher.negotiate();
    // An interpreter's microphone is their booth output: a language channel the server re-routes
    // on every direction switch. Everyone else speaks on the floor.
    const channel = this.state.self === null ? "floor" : publishChannel(this.state.self, this.routing);
    for (const track of publisher.tracks(channel)) {
      if (gen !== this.generation) return;
      const reply = await this.signaller.request({ type: "publish", track });
      if (reply.type === "published") this.state.addOwn(reply.publication);
    }
    if (gen === this.generation && this.publisher === publisher) this.publishComplete = true;
    this.opts.view.render();
  }

  /** Leaves (so the server forgets this participant) and joins again with new transports. */
  private async restartFresh(why: string): Promise<void> {
    if (this.leaving) return;
    console.warn(`dragoman: rebuilding the session (${why})`);
    const signal = this.signal;
    this.generation++;
    this.signal = null;
    this.inCall = false;
    this.setConnection("reconnecting", why);
    if (signal?.isOpen) {
      try {
        await signal.request({ type: "leave" }, 2000);
      } catch {
        /* closing anyway */
      }
      signal.close(1000, "rejoining");
    }
    this.teardownTransports();
    this.state.resetTransports();
    this.opts.view.render();
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.leaving || this.stopped) return;
    this.clearRetry();
    const delay = this.backoff.next(performance.now());
    if (delay === null) {
      this.fail("The connection to the call was lost and could not be restored.");
      return;
    }
    this.setConnection(this.everJoined ? "reconnecting" : "connecting");
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.connect();
    }, delay);
  }

  /** Gives up; `retryLabel` offers a button that starts over (none when retrying cannot help). */
  private fail(message: string, retryLabel: string | null = "Try again"): void {
    this.stopped = true;
    this.generation++;
    this.inCall = false;
    this.teardownTransports();
    this.state.clearRemote();
    this.setRouting(null);
    this.opts.view.render();
    this.setConnection("failed", message);
    this.opts.view.notice(
      message,
      "error",
      retryLabel === null ? undefined : { label: retryLabel, run: () => this.retry() },
    );
  }

  private onClose(gen: number, code: number, reason: string): void {
    if (gen !== this.generation) return;
    this.signal = null;
    this.inCall = false;
    if (this.leaving) return;
    if (code === CLOSE_TOKEN_REFUSED) {
      this.fail(`The server refused the join link: ${this.tokenMessage ?? (reason || "invalid token")}`, null);
      return;
    }
    if (code === CLOSE_REPLACED) {
      this.fail(
        "You joined this call from another window or device, so this one was disconnected.",
        "Use this window",
      );
      return;
    }
    if (code === CLOSE_LEFT) {
      this.generation++;
      this.teardownTransports();
      this.setConnection("left");
      return;
    }
    if (shouldReconnect(code)) this.scheduleReconnect();
  }

  // --- server messages --------------------------------------------------------------------------

  private onPush(gen: number, m: ServerMessage): void {
    if (gen !== this.generation) return;
    switch (m.type) {
      case "participant_joined":
      case "participant_left":
      case "publication_added":
      case "publication_removed":
        this.state.apply(m);
        this.opts.view.render();
        void this.reconcile();
        return;
      case "quality":
        this.state.apply(m);
        this.opts.view.render();
        return;
      case "offer":
        if (m.transport === "subscriber") this.onSubscriberOffer(m.sdp, m);
        return;
      case "routing":
        this.setRouting(m);
        this.opts.view.render();
        return;
      case "error":
        console.warn(`dragoman: server error ${m.code}: ${m.message}`);
        return;
      default:
        // Unknown or unsolicited messages (e.g. newer server features) are ignored.
        return;
    }
  }

  private onSubscriberOffer(sdp: string, m: ServerMessage): void {
    this.state.apply(m);
    if (this.subscriber === null) {
      const subscriber = new SubscriberConnection(this.iceServers, this.signaller, (mid, track) => {
        if (this.subscriber !== subscriber || mid === null) return;
        this.tracksByMid.set(mid, track);
        this.opts.view.render();
      });
      this.subscriber = subscriber;
      subscriber.pc.addEventListener("connectionstatechange", () => {
        if (this.subscriber === subscriber) this.updateMediaState();
      });
    }
    const subscriber = this.subscriber;
    const gen = this.generation;
    subscriber.handleOffer(sdp).then(
      () => this.opts.view.render(),
      (e: unknown) => {
        if (this.subscriber !== subscriber || gen !== this.generation) return;
        if (e instanceof SignalError) {
          // `bad_sdp`: the server sends a fresh offer by itself. A closed socket: a resumed
          // session gets the offer again after `joined`.
          console.warn(`dragoman: subscriber answer not accepted (${e.code}): ${e.message}`);
          return;
        }
        // The browser could not apply the offer (e.g. it follows an answer the server never
        // received): the two sides disagree about the transport, so rebuild it.
        console.warn("dragoman: subscriber offer could not be applied", e);
        void this.restartFresh("subscriber negotiation failed");
      },
    );
  }

  /** Sends `unsubscribe` / `subscribe` until the server's subscriptions match the user's wishes. */
  private async reconcile(): Promise<void> {
    if (this.reconciling) {
      this.reconcileAgain = true;
      return;
    }
    this.reconciling = true;
    try {
      do {
        this.reconcileAgain = false;
        if (!this.inCall) return;
        const diff = this.state.subscriptionDiff();
        if (diff.unsubscribe.length > 0) {
          await this.signaller.request({ type: "unsubscribe", publications: diff.unsubscribe });
          this.state.markUnsubscribed(diff.unsubscribe);
        }
        if (diff.subscribe.length > 0) {
          await this.signaller.request({ type: "subscribe", publications: diff.subscribe });
          this.state.markSubscribed(diff.subscribe);
        }
        this.opts.view.render();
      } while (this.reconcileAgain);
    } catch (e) {
      // Typically a publication vanished between our decision and the server's; its
      // `publication_removed` is on the way. Try again shortly, a bounded number of times.
      if (this.inCall && this.reconcileRetries < 10) {
        this.reconcileRetries++;
        setTimeout(() => void this.reconcile(), 300);
      } else if (this.inCall) {
        console.warn("dragoman: subscription update failed", e);
      }
    } finally {
      this.reconciling = false;
      if (this.reconcileAgain && this.inCall) {
        this.reconcileAgain = false;
        void this.reconcile();
      }
    }
  }

  // --- media transport health -------------------------------------------------------------------

  /**
   * Derives the indicator from the transports, and rebuilds them when one failed, stayed
   * disconnected for {@link MEDIA_STALL_MS}, or never connected within {@link MEDIA_CONNECT_MS}.
   * The subscriber connecting (someone's first media arriving) does not dim the indicator.
   */
  private updateMediaState(): void {
    if (!this.inCall || !this.setupDone || this.leaving) return;
    const pub = this.publisher?.pc.connectionState;
    const sub = this.subscriber?.pc.connectionState;
    if (pub === "failed" || sub === "failed") {
      void this.restartFresh("media connection failed");
      return;
    }
    const stalled = pub === "disconnected" || sub === "disconnected";
    const pubPending = pub !== undefined && pub !== "connected";
    const subPending = sub === "new" || sub === "connecting";
    if (stalled || pubPending || subPending) {
      if (this.mediaTimer === null) {
        const gen = this.generation;
        this.mediaTimer = setTimeout(
          () => {
            this.mediaTimer = null;
            if (gen !== this.generation) return;
            const p = this.publisher?.pc.connectionState;
            const s = this.subscriber?.pc.connectionState;
            if ((p !== undefined && p !== "connected") || (s !== undefined && s !== "connected")) {
              void this.restartFresh("media connection did not recover");
            }
          },
          stalled ? MEDIA_STALL_MS : MEDIA_CONNECT_MS,
        );
      }
    } else if (this.mediaTimer !== null) {
      clearTimeout(this.mediaTimer);
      this.mediaTimer = null;
    }
    if (stalled || pubPending) {
      this.setConnection(this.reconnects > 0 || stalled ? "reconnecting" : "connecting");
      return;
    }
    // Only a working call ends an outage: a join whose media never connects keeps counting.
    this.backoff.reset();
    this.setConnection("connected");
  }

  private setRouting(routing: RoutingMessage | null): void {
    this.routing = routing;
    this.opts.view.routingChanged(routing);
  }

  private teardownTransports(): void {
    if (this.mediaTimer !== null) {
      clearTimeout(this.mediaTimer);
      this.mediaTimer = null;
    }
    this.publisher?.close();
    this.subscriber?.close();
    this.publishComplete = false;
    this.publisher = null;
    this.subscriber = null;
    this.tracksByMid.clear();
  }

  private clearRetry(): void {
    if (this.retryTimer !== null) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
  }

  private setConnection(state: ConnectionState, detail?: string): void {
    if (this.connection === state) return;
    this.connection = state;
    this.opts.view.connectionChanged(state, detail);
  }

  /** Own publications, for the test handle. */
  ownPublications(): PublicationInfo[] {
    return [...this.state.own.values()];
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
