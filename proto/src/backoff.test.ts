import { describe, expect, it } from 'vitest';
import { Backoff, retryAfterMs } from './backoff.js';

describe('Backoff', () => {
  it('grows from about 1 s to a 60 s cap', () => {
    const b = new Backoff({ baseMs: 1000, capMs: 60_000, stableAfterMs: 30_000, random: () => 1 });
    const seq = Array.from({ length: 9 }, () => b.next());
    expect(seq).toEqual([1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
  });

  it('keeps jitter at the cap and never returns zero', () => {
    const b = new Backoff({ baseMs: 1000, capMs: 60_000, stableAfterMs: 30_000 });
    for (let i = 0; i < 10; i++) b.next();
    const atCap = Array.from({ length: 200 }, () => b.next());
    expect(Math.min(...atCap)).toBeGreaterThanOrEqual(12_000);
    expect(Math.max(...atCap)).toBeLessThanOrEqual(60_000);
    expect(new Set(atCap).size).toBeGreaterThan(50);
    const zero = new Backoff({ baseMs: 1000, capMs: 60_000, stableAfterMs: 1, random: () => 0 });
    expect(zero.next()).toBe(200);
  });

  it('resets only after a connection stayed up long enough', () => {
    const b = new Backoff({ baseMs: 1000, capMs: 60_000, stableAfterMs: 30_000, random: () => 1 });
    b.next();
    b.next();
    b.next();
    b.connectionLasted(5_000);
    expect(b.next()).toBe(8000);
    b.connectionLasted(30_000);
    expect(b.next()).toBe(1000);
  });
});

describe('retryAfterMs', () => {
  it('reads seconds or an HTTP date, spread over 100–150 % of it, and ignores what it cannot read', () => {
    expect(retryAfterMs('3', () => 0)).toBe(3000);
    expect(retryAfterMs('3', () => 1)).toBe(4500);
    const now = Date.parse('2026-12-02T00:00:00Z');
    expect(retryAfterMs('Wed, 02 Dec 2026 00:00:10 GMT', () => 0, now)).toBe(10_000);
    expect(retryAfterMs('999999', () => 0)).toBe(3_600_000);
    for (const bad of [undefined, '', 'soon', '-5', 'Tue, 01 Dec 2026 00:00:00 GMT'])
      expect(
        retryAfterMs(bad, () => 0, now),
        String(bad),
      ).toBeUndefined();
  });
});
