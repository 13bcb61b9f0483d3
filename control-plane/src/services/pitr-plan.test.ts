import { describe, expect, it } from 'vitest';
import { ProblemError } from '../problem.js';
import { planRecovery } from './pitr-restore.js';
import type { RecoveryWindow } from './recovery-window.js';

const MB16 = 16 * 1024 * 1024;
const at = (s: number) => new Date(Date.UTC(2026, 11, 2, 8, 0, s));

/** Two base backups (segments 2 and 10) and WAL 2..7 then, after a hole at 8, 9..14; each segment completes at second 10·n. */
function window(): RecoveryWindow & { completions: Map<number, Date> } {
  const completions = new Map<number, Date>();
  for (const n of [2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14]) completions.set(n, at(10 * n));
  return {
    earliest: at(15),
    latest: at(140),
    ranges: [],
    gaps: [],
    baseBackups: [
      {
        backupId: 'b1',
        timeline: 1,
        stopLsn: '0/2000100',
        stopSegno: 2,
        segmentBytes: MB16,
        consistentAt: at(15),
      },
      {
        backupId: 'b2',
        timeline: 1,
        stopLsn: '0/A000100',
        stopSegno: 10,
        segmentBytes: MB16,
        consistentAt: at(95),
      },
    ],
    runs: [
      { timeline: 1, first: 2, last: 7, firstCompletedAt: at(20), lastCompletedAt: at(70) },
      { timeline: 1, first: 9, last: 14, firstCompletedAt: at(90), lastCompletedAt: at(140) },
    ],
    completions,
  };
}

const refused = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ProblemError);
    return (err as ProblemError).status;
  }
  throw new Error('not refused');
};

describe('planning a point-in-time restore', () => {
  it('takes the newest base backup before the time, and WAL from its end to a little past the time', () => {
    const p = planRecovery(window(), { kind: 'time', time: at(42).toISOString() });
    // Segment 5 (complete at 50 s) holds 42 s; two more follow so recovery sees a later commit.
    expect(p).toMatchObject({ from: 2, to: 7, toEnd: true });
    expect(p.base.backupId).toBe('b1');
    const q = planRecovery(window(), { kind: 'time', time: at(101).toISOString() });
    expect(q.base.backupId).toBe('b2');
    expect(q).toMatchObject({ from: 10, to: 13, toEnd: false });
  });

  it('refuses a time before the first base backup, in the hole, or after the archive', () => {
    expect(refused(() => planRecovery(window(), { kind: 'time', time: at(5).toISOString() }))).toBe(422);
    // 80 s: after b1's WAL ends (70 s) and before b2 is consistent (95 s).
    expect(refused(() => planRecovery(window(), { kind: 'time', time: at(80).toISOString() }))).toBe(422);
    expect(refused(() => planRecovery(window(), { kind: 'time', time: at(200).toISOString() }))).toBe(422);
    expect(refused(() => planRecovery(window(), { kind: 'time', time: 'not a time' }))).toBe(422);
  });

  it('restores the latest point from the base backup whose WAL reaches furthest', () => {
    const p = planRecovery(window(), { kind: 'latest' });
    expect(p.base.backupId).toBe('b2');
    expect(p).toMatchObject({ from: 10, to: 14, toEnd: true });
  });

  it('plans an LSN target within one chain', () => {
    const p = planRecovery(window(), { kind: 'lsn', lsn: '0/4000000' });
    expect(p.base.backupId).toBe('b1');
    expect(p).toMatchObject({ from: 2, to: 6 });
    expect(refused(() => planRecovery(window(), { kind: 'lsn', lsn: '0/1000000' }))).toBe(422);
  });
});
