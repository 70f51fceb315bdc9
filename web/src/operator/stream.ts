/**
 * The live health stream (`/v1/health/stream`): one WebSocket, reopened by itself whenever it drops
 * or goes quiet (the server sends a snapshot every second, so 5 s of silence means a dead link even
 * when no close arrives). Reconnects back off from 0.5 s to 5 s and never give up: the dashboard runs
 * all day. The backoff is reset only once a frame arrives, so a server that accepts and drops at
 * once is not hammered.
 */
import { Backoff } from "../backoff";
import type { BackoffOptions } from "../backoff";
import { parseStreamMessage } from "./model";
import type { StreamMessage } from "./model";

export type StreamState = "connecting" | "live" | "reconnecting";

export const STREAM_BACKOFF: BackoffOptions = {
  initialMs: 500,
  maxDelayMs: 5000,
  giveUpAfterMs: Number.POSITIVE_INFINITY,
  jitter: 0.2,
};

export interface StreamOptions {
  url: string;
  onMessage(message: StreamMessage): void;
  onState(state: StreamState): void;
  /** Silence after which the socket is considered dead, ms. */
  staleMs?: number;
  backoff?: BackoffOptions;
  now?: () => number;
}

/** Same-origin stream URL (`wss:` under `https:`) with the key as a query parameter. */
export function streamUrl(location: { protocol: string; host: string }, key: string): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/v1/health/stream?api_key=${encodeURIComponent(key)}`;
}

export class HealthStream {
  private socket: WebSocket | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private watchdog: ReturnType<typeof setInterval> | null = null;
  private lastFrameAt = 0;
  private stopped = true;
  private readonly backoff: Backoff;
  private readonly now: () => number;
  private readonly staleMs: number;
  state: StreamState = "connecting";
  /** Number of sockets opened so far (1 = the first). */
  attempts = 0;

  constructor(private readonly options: StreamOptions) {
    this.backoff = new Backoff(options.backoff ?? STREAM_BACKOFF);
    this.now = options.now ?? (() => Date.now());
    this.staleMs = options.staleMs ?? 5000;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.open();
    this.watchdog = setInterval(() => this.checkStale(), 1000);
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    if (this.watchdog !== null) clearInterval(this.watchdog);
    this.retryTimer = null;
    this.watchdog = null;
    const s = this.socket;
    this.socket = null;
    if (s !== null) {
      s.onclose = null;
      s.close(1000, "dashboard closed");
    }
  }

  private setState(state: StreamState): void {
    if (this.state === state) return;
    this.state = state;
    this.options.onState(state);
  }

  private open(): void {
    this.attempts += 1;
    let socket: WebSocket;
    try {
      socket = new WebSocket(this.options.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    this.lastFrameAt = this.now();
    socket.onmessage = (ev: MessageEvent) => {
      if (this.socket !== socket) return;
      this.lastFrameAt = this.now();
      if (typeof ev.data !== "string") return;
      this.backoff.reset();
      this.setState("live");
      this.options.onMessage(parseStreamMessage(ev.data));
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.scheduleReconnect();
    };
    socket.onerror = () => {
      // A close event follows; reconnecting is handled there.
    };
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    this.setState("reconnecting");
    const delay = this.backoff.next(this.now()) ?? STREAM_BACKOFF.maxDelayMs;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.stopped) this.open();
    }, delay);
  }

  private checkStale(): void {
    const s = this.socket;
    if (s === null || this.stopped) return;
    if (this.now() - this.lastFrameAt < this.staleMs) return;
    // Nothing for too long (or stuck connecting): drop this socket and start over.
    this.socket = null;
    s.onclose = null;
    s.onmessage = null;
    try {
      s.close(4000, "stale");
    } catch {
      // already closing
    }
    this.scheduleReconnect();
  }
}
