import { describe, expect, it } from 'vitest';
import { partSizeFor } from './s3-store.js';

const MiB = 1024 * 1024;

describe('S3 part size', () => {
  it('keeps the profile’s part size while 10 000 parts are enough', () => {
    expect(partSizeFor(8 * MiB, undefined)).toBe(8 * MiB);
    expect(partSizeFor(8 * MiB, 1024 ** 3)).toBe(8 * MiB);
  });

  it('grows it (whole MiB) when the source would need more than 10 000 parts, up to 5 GiB', () => {
    for (const size of [100 * 1024 ** 3, 2 * 1024 ** 4, 40 * 1024 ** 4]) {
      const part = partSizeFor(8 * MiB, size);
      expect(part % MiB).toBe(0);
      expect(part).toBeLessThanOrEqual(5 * 1024 ** 3);
      if (size <= 40 * 1024 ** 4) expect(Math.ceil((size * 1.0001) / part)).toBeLessThan(10_000);
    }
    expect(partSizeFor(8 * MiB, 500 * 1024 ** 4)).toBe(5 * 1024 ** 3);
  });
});
