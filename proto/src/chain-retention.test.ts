import { describe, expect, it } from 'vitest';
import { type ChainBackup, chainGuard, firstNeededSegment } from './chain-retention.js';

const DAY = 86_400_000;
const now = new Date('2026-12-02T12:00:00Z');
const base = (backupId: string, daysAgo: number, startLsn: string, parent?: string): ChainBackup => ({
  backupId,
  startTime: new Date(now.getTime() - daysAgo * DAY).toISOString(),
  engineMeta: {
    kind: 'physical',
    startLsn,
    timeline: '1',
    walSegmentBytes: String(16 * 1024 * 1024),
    ...(parent ? { incremental: 'true', parentBackupId: parent } : {}),
  },
});

describe('retention of a physical chain', () => {
  const metas = [
    base('b10', 10, '0/5000028'),
    base('b6', 6, '0/9000028'),
    base('i5', 5, '0/A000060', 'b6'),
    base('b2', 2, '1/2000028'),
  ];
  const good = () => true;

  it('with keepDays, keeps the newest good base backup before the boundary: it restores the points after it', () => {
    const why = chainGuard({ metas, good, policy: { keepDays: 3 }, now, kept: ['b2'] });
    expect(why('i5')).toBe('the base backup recovery points within keepDays start from');
    expect(why('b6')).toBe('a kept incremental base backup is built on it');
    expect(why('b10')).toBeUndefined();
  });

  it('skips a bad base backup for the boundary, and keeps nothing extra without keepDays', () => {
    const why = chainGuard({
      metas,
      good: (m) => m.backupId !== 'i5',
      policy: { keepDays: 3 },
      now,
      kept: ['b2'],
    });
    expect(why('b6')).toBe('the base backup recovery points within keepDays start from');
    expect(why('i5')).toBeUndefined();
    const none = chainGuard({ metas, good, policy: { keepLast: 1 }, now, kept: ['b2'] });
    expect(['b10', 'b6', 'i5'].map(none)).toEqual([undefined, undefined, undefined]);
  });

  it('keeps the newest backup a drill proved, and what it is built on', () => {
    const why = chainGuard({
      metas,
      good,
      policy: { keepLast: 1 },
      now,
      kept: ['b2'],
      drillKeep: new Set(['i5']),
    });
    expect(why('i5')).toBe('the newest backup a drill proved (a newer one failed its drill)');
    expect(why('b6')).toBe('a kept incremental base backup is built on it');
  });

  it('names the first WAL segment the oldest base backup left needs, across the 4 GB boundary of a log id', () => {
    expect(firstNeededSegment([metas[3]!, metas[1]!])).toBe('000000010000000000000009');
    expect(firstNeededSegment([metas[3]!])).toBe('000000010000000100000002');
    expect(firstNeededSegment([{ backupId: 'logical', startTime: now.toISOString() }])).toBeUndefined();
  });
});
