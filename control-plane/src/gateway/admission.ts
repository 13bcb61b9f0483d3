import type { Duplex } from 'node:stream';

export type Entry = { release: () => void } | { retryAfterSeconds: number } | { gone: true };

/**
 * Admission of agent handshakes (upgrade to welcome): at most `max` at once. The next
 * `maxWaiting` wait in line, in order, for up to `waitMs` (holding an open TCP connection
 * costs little, and a slot frees within milliseconds when the database keeps up); beyond
 * that, or after the wait, the answer is 503 with a Retry-After sized to the line ahead at
 * the rate handshakes are completing, with jitter, which agents honour.
 */
export class Admission {
  #inFlight = 0;
  #line: { grant: () => void }[] = [];
  /** When recent handshakes completed (the last two seconds), for the Retry-After estimate. */
  #completed: number[] = [];

  constructor(
    readonly max: number,
    readonly maxWaiting: number,
    readonly waitMs = 10_000,
  ) {}

  get inFlight() {
    return this.#inFlight;
  }

  get waiting() {
    return this.#line.length;
  }

  async enter(socket: Duplex): Promise<Entry> {
    if (this.#inFlight < this.max && this.#line.length === 0) return this.#take();
    if (this.#line.length >= this.maxWaiting) return { retryAfterSeconds: this.#retryAfter() };
    return new Promise<Entry>((resolve) => {
      const leave = (e: Entry) => {
        clearTimeout(timer);
        socket.off('close', onClose);
        const i = this.#line.indexOf(place);
        if (i >= 0) this.#line.splice(i, 1);
        resolve(e);
      };
      const place = { grant: () => leave(this.#take()) };
      const onClose = () => leave({ gone: true });
      const timer = setTimeout(() => leave({ retryAfterSeconds: this.#retryAfter() }), this.waitMs);
      socket.once('close', onClose);
      this.#line.push(place);
    });
  }

  #take(): Entry {
    this.#inFlight++;
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        this.#inFlight--;
        this.#completed.push(Date.now());
        this.#next();
      },
    };
  }

  #next() {
    while (this.#inFlight < this.max && this.#line.length) {
      // `grant` takes the slot and removes the entry from the line.
      (this.#line[0] as { grant: () => void }).grant();
    }
  }

  /**
   * Seconds until the line ahead has been admitted at the rate handshakes completed over the last
   * two seconds (assumed at least 100 a second: before any complete, a guess on the low side would
   * send the whole crowd a minute away), 2 to 30, plus up to 3 of jitter; agents add their own.
   */
  #retryAfter(): number {
    const now = Date.now();
    while (this.#completed.length && (this.#completed[0] as number) < now - 2000) this.#completed.shift();
    const perSecond = Math.max(100, this.#completed.length / 2);
    const ahead = this.#line.length + this.#inFlight;
    return Math.min(30, Math.max(2, Math.ceil(ahead / perSecond))) + Math.floor(Math.random() * 4);
  }
}
