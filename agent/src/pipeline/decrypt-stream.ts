import { createDecipheriv, type KeyObject } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import {
  authFailure,
  DEFAULT_SEGMENT_BYTES,
  dataKey,
  HEADER_BYTES,
  IntegrityError,
  LEGACY_ZERO_KEY_MESSAGE,
  nonce,
  PIECE_BYTES,
  parseHeader,
  sealedUnderZeroKey,
  TAG_BYTES,
} from './segmented-gcm.js';

/**
 * The streaming reader of the segmented format when the object's size is not known
 * up front (the standalone decrypt command): each segment is held until the next
 * bytes show whether it is the last, then authenticated and passed on.
 */
export class DecryptStream extends Transform {
  readonly #key: KeyObject;
  #header: Buffer | undefined;
  #prefix: Buffer | undefined;
  #segment = 0;
  #buf: Buffer = Buffer.alloc(0);
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #counter = 0;
  segments = 0;

  constructor(key: Buffer) {
    super({ highWaterMark: 2 * DEFAULT_SEGMENT_BYTES });
    this.#key = dataKey(key);
  }

  #open(sealed: Buffer, last: boolean): Buffer[] {
    const header = this.#header!;
    const n = this.#counter;
    const d = createDecipheriv('aes-256-gcm', this.#key, nonce(this.#prefix!, this.#counter++, last));
    d.setAAD(header);
    d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    try {
      // update() hands back plaintext before the tag is checked; it is returned only once final() has checked it.
      const body: Buffer[] = [];
      const cipher = sealed.subarray(0, sealed.length - TAG_BYTES);
      for (let o = 0; o < cipher.length; o += PIECE_BYTES)
        body.push(d.update(cipher.subarray(o, o + PIECE_BYTES)));
      const fin = d.final();
      if (fin.length) body.push(fin);
      this.segments++;
      return body;
    } catch {
      if (n === 0 && sealedUnderZeroKey(header, this.#prefix!, sealed, last))
        throw new IntegrityError(LEGACY_ZERO_KEY_MESSAGE);
      throw authFailure(n, last);
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
    try {
      // Gather chunks and join them only when a whole segment (or the header) may be complete.
      this.#pending.push(chunk);
      this.#pendingBytes += chunk.length;
      const need = this.#header ? this.#segment + TAG_BYTES : HEADER_BYTES;
      if (this.#buf.length + this.#pendingBytes <= need) return cb();
      this.#buf = Buffer.concat([this.#buf, ...this.#pending]);
      this.#pending = [];
      this.#pendingBytes = 0;
      if (!this.#header) {
        if (this.#buf.length < HEADER_BYTES) return cb();
        const h = this.#buf.subarray(0, HEADER_BYTES);
        ({ segment: this.#segment, prefix: this.#prefix } = parseHeader(h));
        this.#header = Buffer.from(h);
        this.#buf = this.#buf.subarray(HEADER_BYTES);
      }
      const full = this.#segment + TAG_BYTES;
      // A full segment is known not to be the last only once more bytes follow it.
      while (this.#buf.length > full) {
        for (const b of this.#open(this.#buf.subarray(0, full), false)) this.push(b);
        this.#buf = this.#buf.subarray(full);
      }
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  override _flush(cb: TransformCallback) {
    try {
      this.#buf = Buffer.concat([this.#buf, ...this.#pending]);
      this.#pending = [];
      if (!this.#header && this.#buf.length >= HEADER_BYTES) {
        this._transform(Buffer.alloc(0), 'binary', (err) => {
          if (err) throw err;
        });
      }
      if (!this.#header) throw new IntegrityError('stream ends before its header: truncated');
      if (this.#buf.length < TAG_BYTES)
        throw new IntegrityError('stream ends inside a segment tag: truncated');
      for (const b of this.#open(this.#buf, true)) this.push(b);
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }
}
