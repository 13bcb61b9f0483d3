import { describe, expect, it } from 'vitest';
import { checkReplayedTo, pgTime } from './pitr-drill-job.js';

describe('a chain drill’s judgement of the replay', () => {
  it('passes when redo ended in or after the newest WAL file, and fails naming both LSNs before it', () => {
    expect(() => checkReplayedTo('0/5000028', '0/5000000')).not.toThrow();
    expect(() => checkReplayedTo('1/28', '0/FF000000')).not.toThrow();
    expect(() => checkReplayedTo('0/4FFFFF0', '0/5000000')).toThrow(
      /replay ended at 0\/4FFFFF0, before 0\/5000000/,
    );
    expect(() => checkReplayedTo(null, '0/5000000')).toThrow(/does not say where redo ended/);
  });

  it('reads the times PostgreSQL’s log prints, in any offset, and nothing else', () => {
    expect(pgTime('2026-12-02 08:13:17.339+00')).toBe(Date.parse('2026-12-02T08:13:17.339Z'));
    expect(pgTime('2026-12-02 09:13:17+01')).toBe(Date.parse('2026-12-02T08:13:17Z'));
    expect(pgTime('2026-12-02 13:43:17-05:30')).toBe(Date.parse('2026-12-02T19:13:17Z'));
    expect(pgTime('2026-12-02 08:13:17 CET')).toBeNull();
    expect(pgTime(null)).toBeNull();
  });
});
