import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { Crc64 } from './crc64.js';
import { RdbStream } from './redis-engine.js';

function rdb(bodyBytes = 5000): Buffer {
  const body = Buffer.concat([Buffer.from('REDIS0010'), Buffer.alloc(bodyBytes, 0x41), Buffer.from([0xff])]);
  return Buffer.concat([body, new Crc64().update(body).bytes()]);
}

async function through(input: Buffer, chunk = 7): Promise<Buffer> {
  const parts: Buffer[] = [];
  const src = Readable.from(
    (function* () {
      for (let i = 0; i < input.length; i += chunk) yield input.subarray(i, i + chunk);
    })(),
  );
  await pipeline(src, new RdbStream(), async (s: AsyncIterable<Buffer>) => {
    for await (const c of s) parts.push(c);
  });
  return Buffer.concat(parts);
}

describe('CRC-64/Jones', () => {
  it('matches the check value Redis uses ("123456789" -> e9c6d914c4b8d9ca)', () => {
    const c = new Crc64().update(Buffer.from('123456789'));
    expect(`${c.hi.toString(16)}${c.lo.toString(16).padStart(8, '0')}`).toBe('e9c6d914c4b8d9ca');
  });
});

describe('RdbStream', () => {
  it('passes a valid RDB through unchanged, in any chunking', async () => {
    const r = rdb();
    for (const size of [1, 7, 49, 50, 4096, 100_000]) expect(await through(r, size)).toEqual(r);
  });

  it('strips the 40-byte end marker redis-cli 7.0 leaves after a diskless transfer', async () => {
    const r = rdb();
    expect(await through(Buffer.concat([r, Buffer.alloc(40, 0x33)]))).toEqual(r);
  });

  it('fails on a flipped byte, a truncated stream, and something that is not an RDB', async () => {
    const r = rdb();
    const flipped = Buffer.from(r);
    flipped[100] = (flipped[100] ?? 0) ^ 1;
    await expect(through(flipped)).rejects.toThrow(/CRC-64/);
    await expect(through(r.subarray(0, r.length - 20))).rejects.toThrow(/truncated or damaged/);
    await expect(through(Buffer.from('PGDMP and more bytes'))).rejects.toThrow(/not a Redis RDB/);
  });
});
