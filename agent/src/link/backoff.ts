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
