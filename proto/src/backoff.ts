export interface BackoffOptions {
  baseMs: number;
  capMs: number;
  /** A connection must stay up this long before the attempt count resets. */
  stableAfterMs: number;
  random?: () => number;
}

/**
 * Exponential backoff with jitter for reconnects: the ceiling doubles from
 * `baseMs` to `capMs`, and each delay is drawn from [20 %, 100 %] of the
 * ceiling, so a fleet of agents that lost the control plane together does not
 * come back together, even once every one of them is at the cap.
 */
export class Backoff {
  readonly #o: Required<BackoffOptions>;
  #attempt = 0;

  constructor(o: BackoffOptions) {
    this.#o = { random: Math.random, ...o };
  }

  get attempt() {
    return this.#attempt;
  }

  ceiling(attempt = this.#attempt): number {
    return Math.min(this.#o.capMs, this.#o.baseMs * 2 ** Math.min(attempt, 30));
  }

  next(): number {
    const ceiling = this.ceiling();
    this.#attempt++;
    return Math.round(ceiling * (0.2 + 0.8 * this.#o.random()));
  }

  /** Call when a connection closes; resets only if it had been up for `stableAfterMs`. */
  connectionLasted(ms: number) {
    if (ms >= this.#o.stableAfterMs) this.#attempt = 0;
  }
}

/**
 * A refusal's `Retry-After` (seconds, or an HTTP date) in milliseconds, spread over
 * [100 %, 150 %] of it so that agents told the same wait do not all come back at once.
 * Undefined when there is none (or it is unreadable); at most an hour.
 */
export function retryAfterMs(
  header: string | undefined,
  random = Math.random,
  now = Date.now(),
): number | undefined {
  if (!header) return undefined;
  const seconds = /^\d{1,6}$/.test(header.trim()) ? Number(header.trim()) : (Date.parse(header) - now) / 1000;
  if (!Number.isFinite(seconds) || seconds < 0) return undefined;
  return Math.round(Math.min(seconds, 3600) * 1000 * (1 + 0.5 * random()));
}
