import { describe, expect, it } from 'vitest';
import {
  chainOf,
  formatLsn,
  parseLsn,
  parseSegmentName,
  segmentName,
  segmentOf,
  validSegmentBytes,
  WalFileName,
} from './wal.js';

const MB16 = 16 * 1024 * 1024;

describe('WAL positions and names', () => {
  it('reads and writes LSNs', () => {
    expect(parseLsn('0/2000028')).toBe(0x2000028n);
    expect(parseLsn('1/0')).toBe(0x100000000n);
    expect(formatLsn(parseLsn('A/FF00')).toString()).toBe('A/FF00');
    expect(() => parseLsn('0/2000028; DROP')).toThrow();
  });

  it('names the segment holding an LSN, as PostgreSQL does', () => {
    expect(segmentName(1, segmentOf(parseLsn('0/2000028'), MB16), MB16)).toBe('000000010000000000000002');
    // 256 segments of 16 MiB to a "log": 1/0 is the first segment of log 1.
    expect(segmentName(1, segmentOf(parseLsn('1/0'), MB16), MB16)).toBe('000000010000000100000000');
    expect(segmentName(3, segmentOf(parseLsn('0/FFFFFFFF'), MB16), MB16)).toBe('0000000300000000000000FF');
    // 1 GiB segments: four to a log.
    expect(segmentName(1, segmentOf(parseLsn('2/C0000000'), 1 << 30), 1 << 30)).toBe(
      '000000010000000200000003',
    );
  });

  it('parses a segment name back, and refuses what is not one', () => {
    expect(parseSegmentName('000000010000000100000000', MB16)).toEqual({ timeline: 1, segno: 256n });
    expect(parseSegmentName('0000000100000001000000FF', MB16)).toEqual({ timeline: 1, segno: 511n });
    // Segment 0x100 of a log does not exist with 16 MiB segments.
    expect(parseSegmentName('000000010000000100000100', MB16)).toBeUndefined();
    expect(parseSegmentName('00000001000000010000000g', MB16)).toBeUndefined();
    expect(WalFileName.safeParse('00000002.history').success).toBe(true);
    expect(WalFileName.safeParse('../00000002.history').success).toBe(false);
    expect(WalFileName.safeParse('000000010000000100000000.partial').success).toBe(false);
  });

  it('knows the segment sizes PostgreSQL allows', () => {
    expect(validSegmentBytes(MB16)).toBe(true);
    expect(validSegmentBytes(1 << 30)).toBe(true);
    expect(validSegmentBytes(1 << 19)).toBe(false);
    expect(validSegmentBytes(3 * MB16)).toBe(false);
  });
});

describe('chains of incremental base backups', () => {
  const b = (id: string, parent?: string): { backupId: string; engineMeta: Record<string, string> } => ({
    backupId: id,
    engineMeta: parent ? { incremental: 'true', parentBackupId: parent } : { kind: 'physical' },
  });
  const all = [
    b('full'),
    b('i1', 'full'),
    b('i2', 'i1'),
    b('orphan', 'gone'),
    b('loop-a', 'loop-b'),
    b('loop-b', 'loop-a'),
  ];
  const byId = (id: string) => all.find((x) => x.backupId === id);

  it('is the full backup alone, or each parent back to it, oldest first', () => {
    expect(chainOf(b('full'), byId)?.map((x) => x.backupId)).toEqual(['full']);
    expect(chainOf(byId('i2')!, byId)?.map((x) => x.backupId)).toEqual(['full', 'i1', 'i2']);
  });

  it('is broken when a parent is gone, loops, or runs longer than allowed', () => {
    expect(chainOf(byId('orphan')!, byId)).toBeUndefined();
    expect(chainOf(byId('loop-a')!, byId)).toBeUndefined();
    expect(chainOf(byId('i2')!, byId, 2)).toBeUndefined();
  });
});
