import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { DecryptStream, EncryptStream, HEADER_BYTES, IntegrityError, TAG_BYTES } from './segmented-gcm.js';

const SEG = 4096;

async function collect(src: Readable | Buffer[], t: NodeJS.ReadWriteStream): Promise<Buffer> {
  const out: Buffer[] = [];
  t.on('data', (c: Buffer) => out.push(c));
  await pipeline(Array.isArray(src) ? Readable.from(src) : src, t);
  return Buffer.concat(out);
}

const encrypt = (key: Buffer, plain: Buffer) => collect(chunks(plain, 1000), new EncryptStream(key, SEG));
const decrypt = (key: Buffer, sealed: Buffer) => collect(chunks(sealed, 777), new DecryptStream(key));
function chunks(b: Buffer, n: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += n) out.push(b.subarray(i, i + n));
  return out;
}

describe('segmented AES-256-GCM', () => {
  const key = randomBytes(32);

  it.each([0, 1, SEG - 1, SEG, SEG + 1, 3 * SEG, 10 * SEG + 123])('round-trips %i bytes', async (n) => {
    const plain = randomBytes(n);
    const sealed = await encrypt(key, plain);
    const segments = Math.max(1, Math.ceil(n / SEG));
    expect(sealed.length).toBe(HEADER_BYTES + n + segments * TAG_BYTES);
    expect((await decrypt(key, sealed)).equals(plain)).toBe(true);
  });

  it('detects a flipped bit', async () => {
    const sealed = await encrypt(key, randomBytes(5 * SEG));
    sealed[HEADER_BYTES + 2 * (SEG + TAG_BYTES) + 10]! ^= 1;
    await expect(decrypt(key, sealed)).rejects.toThrow(/segment 2 failed authentication/);
  });

  it('detects truncation at a segment boundary and inside a segment', async () => {
    const sealed = await encrypt(key, randomBytes(5 * SEG));
    const atBoundary = sealed.subarray(0, HEADER_BYTES + 3 * (SEG + TAG_BYTES));
    await expect(decrypt(key, atBoundary)).rejects.toThrow(/final segment: the backup is truncated/);
    await expect(decrypt(key, sealed.subarray(0, sealed.length - 100))).rejects.toThrow(IntegrityError);
  });

  it('detects swapped segments', async () => {
    const sealed = await encrypt(key, randomBytes(5 * SEG));
    const s = SEG + TAG_BYTES;
    const a = HEADER_BYTES + s;
    const swapped = Buffer.concat([
      sealed.subarray(0, a),
      sealed.subarray(a + s, a + 2 * s),
      sealed.subarray(a, a + s),
      sealed.subarray(a + 2 * s),
    ]);
    await expect(decrypt(key, swapped)).rejects.toThrow(/segment 1 failed authentication/);
  });

  it('refuses the wrong key and a changed header', async () => {
    const sealed = await encrypt(key, randomBytes(100));
    await expect(decrypt(randomBytes(32), sealed)).rejects.toThrow(IntegrityError);
    const h = Buffer.from(sealed);
    h[20]! ^= 1;
    await expect(decrypt(key, h)).rejects.toThrow(IntegrityError);
  });

  it('passes no plaintext of a segment that fails', async () => {
    const plain = randomBytes(4 * SEG);
    const sealed = await encrypt(key, plain);
    sealed[HEADER_BYTES + 2 * (SEG + TAG_BYTES) + 5]! ^= 1;
    const got: Buffer[] = [];
    const d = new DecryptStream(key);
    d.on('data', (c: Buffer) => got.push(c));
    await expect(pipeline(Readable.from(chunks(sealed, 500)), d)).rejects.toThrow(IntegrityError);
    expect(Buffer.concat(got).length).toBe(2 * SEG);
  });
});
