import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** Counts (and optionally hashes) the bytes that pass, without holding any. */
export class Meter extends Transform {
  bytes = 0;
  readonly #hash: Hash | undefined;

  constructor({ sha256 = false }: { sha256?: boolean } = {}) {
    super({ highWaterMark: 1024 * 1024 });
    this.#hash = sha256 ? createHash('sha256') : undefined;
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

/** Passes bytes through, and at the end waits for `done`: a failing producer fails the pipeline before its end. */
export class Gate extends Transform {
  readonly #done: Promise<unknown>;
  constructor(done: Promise<unknown>) {
    super({ highWaterMark: 1024 * 1024 });
    this.#done = done;
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback) {
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback) {
    this.#done.then(
      () => cb(),
      (err) => cb(err as Error),
    );
  }
}
