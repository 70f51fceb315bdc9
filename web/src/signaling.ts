/**
 * One signaling WebSocket connection: sends client messages in call order, numbers requests and
 * resolves each with its reply (or rejects with the server's `error`), hands every other server
 * message to `onMessage`, and reports the close exactly once. A keep-alive `ping` detects a socket
 * that died silently. Reconnecting is not its job: a new connection is a new `SignalClient`.
 */
import { type ClientMessage, MalformedMessage, parseServerMessage, type ServerMessage } from "./protocol";

/** A request the server refused (`error` reply), or one that got no reply. */
export class SignalError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "SignalError";
  }
}

export interface SignalHandlers {
  /** Every server message that is not the reply to a pending request. */
  onMessage(message: ServerMessage): void;
  /** The connection ended (called once). */
  onClose(code: number, reason: string): void;
}

interface Pending {
  resolve(message: ServerMessage): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/** Close code used locally when the socket stopped answering pings (never sent by the server). */
export const CLOSE_KEEPALIVE_TIMEOUT = 4900;

export const REQUEST_TIMEOUT_MS = 10_000;
const PING_INTERVAL_MS = 10_000;
const PONG_TIMEOUT_MS = 8_000;

export class SignalClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;
  private pingTimer: ReturnType<typeof setInterval> | null = null;

  private constructor(
    readonly socket: WebSocket,
    private readonly handlers: SignalHandlers,
  ) {
    socket.onmessage = (event: MessageEvent) => this.receive(event.data);
    socket.onclose = (event: CloseEvent) => this.finish(event.code, event.reason);
    socket.onerror = () => {
      /* the close event follows and carries the code */
    };
    this.pingTimer = setInterval(() => this.keepAlive(), PING_INTERVAL_MS);
  }

  /** Opens a socket to `url`; resolves once it is open. */
  static connect(url: string, handlers: SignalHandlers, timeoutMs = 10_000): Promise<SignalClient> {
    return new Promise((resolve, reject) => {
      let socket: WebSocket;
      try {
        socket = new WebSocket(url);
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
        return;
      }
      const timer = setTimeout(() => {
        socket.onopen = socket.onclose = null;
        socket.close();
        reject(new SignalError("connect_timeout", `no answer from ${url}`));
      }, timeoutMs);
      socket.onopen = () => {
        clearTimeout(timer);
        resolve(new SignalClient(socket, handlers));
      };
      socket.onclose = (event: CloseEvent) => {
        clearTimeout(timer);
        reject(new SignalError("connect_failed", `could not connect (close ${event.code})`));
      };
    });
  }

  get isOpen(): boolean {
    return !this.closed && this.socket.readyState === WebSocket.OPEN;
  }

  /** Sends a message that expects no reply (e.g. `candidate` without an id). */
  send(message: ClientMessage): void {
    if (!this.isOpen) return;
    this.socket.send(JSON.stringify(message));
  }

  /** Sends a request with a fresh id; resolves with its reply, rejects with {@link SignalError}. */
  request(message: ClientMessage, timeoutMs = REQUEST_TIMEOUT_MS): Promise<ServerMessage> {
    if (!this.isOpen) {
      return Promise.reject(new SignalError("not_connected", "the signaling connection is closed"));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new SignalError("timeout", `no reply to ${message.type}`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.socket.send(JSON.stringify({ ...message, id }));
    });
  }

  /** Closes the connection from this side; `onClose` is called with `code`. */
  close(code = 1000, reason = ""): void {
    try {
      this.socket.close(code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000, reason);
    } catch {
      /* already closing */
    }
    this.finish(code, reason);
  }

  private receive(data: unknown): void {
    if (this.closed || typeof data !== "string") return;
    let message: ServerMessage;
    try {
      message = parseServerMessage(data);
    } catch (e) {
      console.warn("dragoman: ignoring malformed server message", e instanceof MalformedMessage ? e.message : e);
      return;
    }
    const id = "id" in message ? message.id : undefined;
    const pending = typeof id === "number" ? this.pending.get(id) : undefined;
    if (pending !== undefined && typeof id === "number") {
      this.pending.delete(id);
      clearTimeout(pending.timer);
      if (message.type === "error") pending.reject(new SignalError(message.code, message.message));
      else pending.resolve(message);
      return;
    }
    this.handlers.onMessage(message);
  }

  private keepAlive(): void {
    if (!this.isOpen) return;
    this.request({ type: "ping" }, PONG_TIMEOUT_MS).catch((e: unknown) => {
      if (e instanceof SignalError && e.code === "timeout") {
        this.close(CLOSE_KEEPALIVE_TIMEOUT, "keep-alive timeout");
      }
    });
  }

  private finish(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    this.socket.onmessage = this.socket.onclose = this.socket.onerror = null;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new SignalError("closed", "the signaling connection closed"));
    }
    this.pending.clear();
    this.handlers.onClose(code, reason);
  }
}
