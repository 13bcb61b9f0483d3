import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecryptStream } from './decrypt-stream.js';
import {
  authenticateSegments,
  decryptSegments,
  EncryptStream,
  HEADER_BYTES,
  IntegrityError,
  TAG_BYTES,
} from './segmented-gcm.js';

const SEG = 4096;

async function collect(src: Readable | Buffer[], t: NodeJS.ReadWriteStream): Promise<Buffer> {
  const out: Buffer[] = [];
  t.on('data', (c: Buffer) => out.push(c));
  await pipeline(Array.isArray(src) ? Readable.from(src) : src, t);
  return Buffer.concat(out);
}

const encrypt = (key: Buffer, plain: Buffer) => collect(chunks(plain, 1000), new EncryptStream(key, SEG));
const decrypt = (key: Buffer, sealed: Buffer) => collect(chunks(sealed, 777), new DecryptStream(key));
/** The sealed stream with its segments 1 and 2 (of size SEG) exchanged. */
function swapSegments1And2(sealed: Buffer): Buffer {
  const s = SEG + TAG_BYTES;
  const a = HEADER_BYTES + s;
  return Buffer.concat([
    sealed.subarray(0, a),
    sealed.subarray(a + s, a + 2 * s),
    sealed.subarray(a, a + s),
    sealed.subarray(a + 2 * s),
  ]);
}

/** Buffers as a store's reader hands them over (an async iterable). */
async function* reading(parts: Buffer[]): AsyncGenerator<Buffer> {
  yield* parts;
}

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
    const swapped = swapSegments1And2(sealed);
    await expect(decrypt(key, swapped)).rejects.toThrow(/segment 1 failed authentication/);
  });

  it('refuses the wrong key and a changed header', async () => {
    const sealed = await encrypt(key, randomBytes(100));
    await expect(decrypt(randomBytes(32), sealed)).rejects.toThrow(IntegrityError);
    const h = Buffer.from(sealed);
    h[20]! ^= 1;
    await expect(decrypt(key, h)).rejects.toThrow(IntegrityError);
  });

  it("owns a copy of the data key: wiping the caller's buffer right after construction changes nothing", async () => {
    const k = randomBytes(32);
    const saved = Buffer.from(k);
    const e = new EncryptStream(k, SEG);
    k.fill(0); // what the backup job does
    const plain = randomBytes(3 * SEG);
    const sealed = await collect(chunks(plain, 1000), e);
    await expect(decrypt(Buffer.alloc(32), sealed)).rejects.toThrow(IntegrityError);
    const k2 = Buffer.from(saved);
    const d = new DecryptStream(k2);
    k2.fill(0); // what restore, verify and the decrypt command do
    expect((await collect(chunks(sealed, 777), d)).equals(plain)).toBe(true);
    const k3 = Buffer.from(saved);
    const checking = authenticateSegments(reading([sealed]), k3, sealed.length);
    k3.fill(0);
    await expect(checking).resolves.toBe(3);
    const k4 = Buffer.from(saved);
    const opening = decryptSegments(reading([sealed]), k4, sealed.length);
    k4.fill(0); // before the generator has run at all
    const out: Buffer[] = [];
    for await (const pieces of opening) out.push(...pieces);
    expect(Buffer.concat(out).equals(plain)).toBe(true);
  });

  it('names a backup sealed under the all-zero key (agents before 0.1.1)', async () => {
    const sealed = await encrypt(Buffer.alloc(32), randomBytes(2 * SEG + 5));
    await expect(decrypt(key, sealed)).rejects.toThrow(/before 0\.1\.1.*all-zero key.*--legacy-zero-key/);
    await expect(authenticateSegments(reading(chunks(sealed, 1000)), key, sealed.length)).rejects.toThrow(
      /before 0\.1\.1.*all-zero key/,
    );
    // A damaged first segment under a real key is damage, not a legacy backup.
    const damaged = await encrypt(key, randomBytes(2 * SEG));
    damaged[HEADER_BYTES + 3]! ^= 1;
    await expect(decrypt(key, damaged)).rejects.toThrow(/segment 0 failed authentication/);
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

describe("authenticateSegments (a restore's check before the tool sees a byte)", () => {
  const key = randomBytes(32);
  // Chunked as a store reads it; `size` is what the store says the object's size is.
  const check = (sealed: Buffer, chunk = 1000, size = sealed.length) =>
    authenticateSegments(reading(chunks(sealed, chunk)), key, size);

  it('decrypts exactly the plaintext from one reused read buffer, however it is chunked', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 5 * SEG + 3 }),
        fc.integer({ min: 1, max: 2 * SEG }),
        async (n, c) => {
          const plain = randomBytes(n);
          const sealed = await encrypt(key, plain);
          // As LocalStore.readReused hands them over: the same buffer, overwritten for every chunk.
          const reused = Buffer.alloc(c);
          const reader = (async function* () {
            for (let i = 0; i < sealed.length; i += c) {
              const len = sealed.copy(reused, 0, i, Math.min(i + c, sealed.length));
              yield reused.subarray(0, len);
            }
          })();
          const out: Buffer[] = [];
          for await (const pieces of decryptSegments(reader, key, sealed.length)) out.push(...pieces);
          expect(Buffer.concat(out).equals(plain)).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('counts the segments of a good object however it is chunked', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 6 * SEG + 7 }),
        fc.integer({ min: 1, max: 3 * SEG }),
        async (n, c) => {
          const sealed = await encrypt(key, randomBytes(n));
          expect(await check(sealed, c)).toBe(Math.max(1, Math.ceil(n / SEG)));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('fails on any flipped byte, naming the segment', async () => {
    const sealed = await encrypt(key, randomBytes(5 * SEG + 10));
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: sealed.length - 1 }), async (at) => {
        const bad = Buffer.from(sealed);
        bad[at]! ^= 0x40;
        await expect(check(bad, 999)).rejects.toThrow(IntegrityError);
      }),
      { numRuns: 80 },
    );
    const bad = Buffer.from(sealed);
    bad[HEADER_BYTES + 2 * (SEG + TAG_BYTES) + 10]! ^= 1;
    await expect(check(bad)).rejects.toThrow(/segment 2 failed authentication/);
  });

  it('fails on truncation at a segment boundary and inside a segment', async () => {
    const sealed = await encrypt(key, randomBytes(5 * SEG));
    const atBoundary = sealed.subarray(0, HEADER_BYTES + 3 * (SEG + TAG_BYTES));
    await expect(check(atBoundary)).rejects.toThrow(/segment 2 failed authentication as the final segment/);
    await expect(check(sealed.subarray(0, sealed.length - 100))).rejects.toThrow(/final segment/);
    await expect(check(sealed.subarray(0, HEADER_BYTES))).rejects.toThrow(/truncated/);
    await expect(check(sealed.subarray(0, 10))).rejects.toThrow(/before its header: truncated/);
  });

  it('fails when the object is shorter or longer than its stated size', async () => {
    const sealed = await encrypt(key, randomBytes(3 * SEG));
    await expect(check(sealed.subarray(0, sealed.length - 5), 1000, sealed.length)).rejects.toThrow(
      /ends after \d+ of \d+ bytes: truncated/,
    );
    await expect(check(Buffer.concat([sealed, Buffer.alloc(3)]), 1000, sealed.length)).rejects.toThrow(
      /longer than/,
    );
  });

  it('fails on swapped segments, a wrong key and a changed header', async () => {
    const sealed = await encrypt(key, randomBytes(5 * SEG));
    const swapped = swapSegments1And2(sealed);
    await expect(check(swapped)).rejects.toThrow(/segment 1 failed authentication/);
    await expect(authenticateSegments(reading([sealed]), randomBytes(32), sealed.length)).rejects.toThrow(
      /segment 0 failed authentication/,
    );
    const h = Buffer.from(sealed);
    h[20]! ^= 1;
    await expect(check(h)).rejects.toThrow(/segment 0 failed authentication/);
    h[0]! ^= 1;
    await expect(check(h)).rejects.toThrow(/bad magic/);
  });
});
