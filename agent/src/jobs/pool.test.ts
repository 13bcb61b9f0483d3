import { describe, expect, it } from 'vitest';
import { eachAtMost } from './pool.js';

const later = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('eachAtMost', () => {
  it('runs every item, never more than the limit at once', async () => {
    let running = 0;
    let most = 0;
    const done: number[] = [];
    await eachAtMost([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      running++;
      most = Math.max(most, running);
      await later(5 + (n % 3) * 5);
      running--;
      done.push(n);
    });
    expect(done.sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(most).toBe(3);
  });

  it('throws the first failure only after the calls already started have ended, and starts no more', async () => {
    const events: string[] = [];
    const run = eachAtMost(['slow', 'bad', 'never-1', 'never-2'], 2, async (s) => {
      events.push(`start ${s}`);
      if (s === 'bad') {
        await later(5);
        events.push('fail bad');
        throw new Error('bad item');
      }
      await later(60);
      events.push(`end ${s}`);
    });
    await expect(run).rejects.toThrow('bad item');
    events.push('rejected');
    expect(events).toEqual(['start slow', 'start bad', 'fail bad', 'end slow', 'rejected']);
  });
});
