import { describe, expect, it } from 'vitest';
import { Backoff } from './backoff.js';

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
