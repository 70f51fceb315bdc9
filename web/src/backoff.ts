/**
 * Reconnect policy for the signaling socket: which close codes deserve a reconnect, and how long to
 * wait before each attempt (250 ms, 500 ms, 1 s, 2 s, 4 s, 4 s, … until about 30 s have passed since
 * the connection was lost, then give up). Pure: time is passed in, randomness is injectable.
 */

/** Close codes after which reconnecting would be wrong (docs/protocol.md §9). */
export const CLOSE_TOKEN_REFUSED = 4001;
export const CLOSE_REPLACED = 4002;
export const CLOSE_LEFT = 4004;
/** The server asks the client to reconnect (treated like any unexpected close). */
export const CLOSE_RECONNECT_REQUESTED = 4005;

/** True when a socket closed with `code` should be reopened. */
export function shouldReconnect(code: number): boolean {
  return code !== CLOSE_TOKEN_REFUSED && code !== CLOSE_REPLACED && code !== CLOSE_LEFT;
}

export interface BackoffOptions {
  /** First delay, ms. */
  initialMs: number;
  /** Largest single delay, ms. */
  maxDelayMs: number;
  /** Stop trying once this long has passed since the connection was lost, ms. */
  giveUpAfterMs: number;
  /** Fraction of random extra delay, 0 … 1 (spreads many clients after a server restart). */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = {
  initialMs: 250,
  maxDelayMs: 4000,
  giveUpAfterMs: 30_000,
  jitter: 0.2,
};

/**
 * Tracks one outage. Call {@link next} each time an attempt is needed; it returns the delay before
 * that attempt, or `null` when the outage has lasted too long. {@link reset} after a successful join.
 */
export class Backoff {
  private attempt = 0;
  private lostAt: number | null = null;

  constructor(
    private readonly options: BackoffOptions = DEFAULT_BACKOFF,
    private readonly random: () => number = Math.random,
  ) {}

  /** Number of attempts handed out in the current outage. */
  get attempts(): number {
    return this.attempt;
  }

  /** Delay in ms before the next attempt, or null to give up. `nowMs` is a monotonic clock. */
  next(nowMs: number): number | null {
    if (this.lostAt === null) {
      this.lostAt = nowMs;
    }
    const base = Math.min(this.options.initialMs * 2 ** this.attempt, this.options.maxDelayMs);
    const delay = Math.round(base * (1 + this.options.jitter * this.random()));
    if (nowMs - this.lostAt + delay > this.options.giveUpAfterMs) {
      return null;
    }
    this.attempt += 1;
    return delay;
  }

  /** Forget the outage: the next call to {@link next} starts again at the first delay. */
  reset(): void {
    this.attempt = 0;
    this.lostAt = null;
  }
}
