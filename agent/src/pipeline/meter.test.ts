import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { Meter } from './meter.js';

describe('Meter', () => {
  it('a producer that fails long before the stream ends is not an unhandled rejection, and still fails the stream', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (r: unknown) => unhandled.push(r);
    process.on('unhandledRejection', onUnhandled);
    try {
      const failed = Promise.reject(new Error('pg_dump failed (exit 1)'));
      const gate = new Meter({ until: failed });
      // Let the event loop turn: an unobserved rejection would be reported now.
      await new Promise((r) => setTimeout(r, 50));
      await expect(
        pipeline(Readable.from([Buffer.from('abc')]), gate, async (s: AsyncIterable<Buffer>) => {
          for await (const _ of s) {
            // drain
          }
        }),
      ).rejects.toThrow(/pg_dump failed/);
      expect(unhandled).toEqual([]);
      expect(gate.bytes).toBe(3);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
