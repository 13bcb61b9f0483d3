import { describe, expect, it } from 'vitest';
import { STRIP_DAYS, stripOf } from './dashboard.js';

const now = new Date('2026-12-02T15:00:00Z');
const bits = (...n: number[]) => n.reduce((m, b) => m | (1n << BigInt(b)), 0n).toString();

describe('the day strip from a target’s bitmasks', () => {
  it('puts today last, and bit n at n days before day0', () => {
    const s = stripOf({ day0: '2026-12-02', good: bits(0, 2), failed: bits(1), missed: bits(29) }, now);
    expect(s).toHaveLength(STRIP_DAYS);
    expect(s.slice(-3)).toBe('gfg');
    expect(s[0]).toBe('m');
  });

  it('shifts by the days since the last activity, and a good backup wins over a failure that day', () => {
    // Last activity two days ago: bit 0 is the day before yesterday.
    const s = stripOf({ day0: new Date(2026, 10, 30), good: bits(0), failed: bits(0, 1), missed: '0' }, now);
    expect(s.slice(-4)).toBe('fg--');
  });

  it('is empty without activity, and ignores what lies beyond the 62 days kept', () => {
    expect(stripOf({ day0: null, good: null, failed: null, missed: null }, now)).toBe('-'.repeat(STRIP_DAYS));
    expect(stripOf({ day0: '2026-09-01', good: bits(0), failed: '0', missed: '0' }, now)).toBe(
      '-'.repeat(STRIP_DAYS),
    );
  });

  it('reads every day as shifting each mask would, for 2 000 random masks and day0s', () => {
    // A small seeded generator: the same cases on every run.
    let seed = 42n;
    const next = () => {
      seed = (seed * 6364136223846793005n + 1442695040888963407n) & ((1n << 64n) - 1n);
      return seed >> 2n; // 62 bits
    };
    for (let i = 0; i < 2000; i++) {
      const [good, failed, missed] = [next(), next(), next()].map((m, k) => (i % 4 === k ? 0n : m));
      const lag = Number(next() % 70n) - 35;
      const day0 = new Date(Date.parse('2026-12-02T00:00:00Z') + lag * 86_400_000).toISOString().slice(0, 10);
      let expected = '';
      for (let k = STRIP_DAYS - 1; k >= 0; k--) {
        const bit = lag + k;
        const has = (m: bigint) => bit >= 0 && bit <= 61 && ((m! >> BigInt(bit)) & 1n) === 1n;
        expected += has(good!) ? 'g' : has(failed!) ? 'f' : has(missed!) ? 'm' : '-';
      }
      const got = stripOf(
        { day0, good: good!.toString(), failed: failed!.toString(), missed: missed!.toString() },
        now,
      );
      expect(got, `case ${i}`).toBe(expected);
    }
  });
});
