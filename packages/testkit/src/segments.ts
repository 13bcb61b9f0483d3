import { createCipheriv, createDecipheriv } from 'node:crypto';

/**
 * The stored object's segment format, written out here on purpose rather than imported
 * from the agent (agent/src/pipeline/segmented-gcm.ts), so that end-to-end tests check
 * what is in the bucket independently of the code that wrote it: a 32-byte header (its
 * bytes 8..11 the segment size, 12..18 the nonce prefix), then AES-256-GCM segments,
 * each with its 16-byte tag, the header as additional data.
 */

/** The nonce of segment `counter` (format in agent/src/pipeline/segmented-gcm.ts): prefix | u32 counter | last flag. */
export function segmentNonce(header: Buffer, counter: number, last: boolean): Buffer {
  const nonce = Buffer.alloc(12);
  header.copy(nonce, 0, 12, 19);
  nonce.writeUInt32BE(counter, 7);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/** Whether segment 0 of a stored object authenticates under `key`. */
export function openFirstSegment(sealed: Buffer, key: Buffer): boolean {
  const header = sealed.subarray(0, 32);
  const segment = header.readUInt32BE(8);
  const last = sealed.length <= 32 + segment + 16;
  const body = sealed.subarray(32, last ? sealed.length : 32 + segment + 16);
  try {
    const d = createDecipheriv('aes-256-gcm', key, segmentNonce(header, 0, last));
    d.setAAD(header);
    d.setAuthTag(body.subarray(body.length - 16));
    d.update(body.subarray(0, body.length - 16));
    d.final();
    return true;
  } catch {
    return false;
  }
}

/** The same object sealed under another key, segment by segment (what an agent before 0.1.1 wrote under zeros). */
export function reseal(sealed: Buffer, from: Buffer, to: Buffer): Buffer {
  const header = sealed.subarray(0, 32);
  const segment = header.readUInt32BE(8);
  const out = [header];
  for (let pos = 32, counter = 0; pos < sealed.length; counter++) {
    const last = sealed.length - pos <= segment + 16;
    const body = sealed.subarray(pos, last ? sealed.length : pos + segment + 16);
    const nonce = segmentNonce(header, counter, last);
    const d = createDecipheriv('aes-256-gcm', from, nonce);
    d.setAAD(header);
    d.setAuthTag(body.subarray(body.length - 16));
    const plain = Buffer.concat([d.update(body.subarray(0, body.length - 16)), d.final()]);
    const c = createCipheriv('aes-256-gcm', to, nonce);
    c.setAAD(header);
    out.push(c.update(plain), c.final(), c.getAuthTag());
    pos += body.length;
  }
  return Buffer.concat(out);
}
