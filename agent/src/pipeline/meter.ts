import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * Counts (and optionally hashes) the bytes that pass, without holding any.
 * With `until`, it also waits for that promise before ending: a failing
 * producer (a dump tool exiting non-zero) fails the pipeline before its end
 * reaches storage, so an upload is never completed from a partial dump.
 */
export class Meter extends Transform {
  bytes = 0;
  readonly #hash: Hash | undefined;
  readonly #until: Promise<unknown> | undefined;

  constructor({ sha256 = false, until }: { sha256?: boolean; until?: Promise<unknown> } = {}) {
    super({ highWaterMark: 1024 * 1024 });
    this.#hash = sha256 ? createHash('sha256') : undefined;
    this.#until = until;
    // Observed at the end of the stream; until then a rejection is not unhandled (it would
    // crash the process if the producer failed before the stream reached its end).
    until?.catch(() => {});
  }

  override _flush(cb: TransformCallback) {
    if (!this.#until) return cb();
    this.#until.then(
      () => cb(),
      (err) => cb(err as Error),
    );
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback) {
    this.bytes += chunk.length;
    this.#hash?.update(chunk);
    cb(null, chunk);
  }

  digest(): string {
    if (!this.#hash) throw new Error('meter does not hash');
    return this.#hash.digest('hex');
  }
}
