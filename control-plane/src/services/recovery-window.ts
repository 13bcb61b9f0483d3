import { parseLsn, segmentName, segmentOf } from '@dbbackup/proto';
import type { Db } from '../db/database.js';

/** A physical base backup as point-in-time recovery sees it. */
export interface BaseBackup {
  backupId: string;
  timeline: number;
  stopLsn: string;
  /** The segment holding the backup's end: archived WAL must continue from here. */
  stopSegno: number;
  segmentBytes: number;
  /** When it was consistent (no earlier point can be restored from it). */
  consistentAt: Date;
}

/** Contiguous archived segments of one timeline. */
export interface WalRun {
  timeline: number;
  first: number;
  last: number;
  firstCompletedAt: Date;
  lastCompletedAt: Date;
}

export interface RecoveryRange {
  timeline: number;
  from: Date;
  to: Date;
  baseBackupIds: string[];
}

export interface WalGap {
  timeline: number;
  /** The first and last missing segment. */
  missingFrom: string;
  missingTo: string;
  /** Restorable up to here before the gap, and again from the next base backup after it. */
  restorableUntil: Date | null;
  walResumesAt: Date | null;
}

export interface RecoveryWindow {
  earliest: Date | null;
  latest: Date | null;
  ranges: RecoveryRange[];
  gaps: WalGap[];
  baseBackups: BaseBackup[];
  runs: WalRun[];
}

/** The completed physical base backups of a target, oldest first. */
export async function baseBackups(db: Db, targetId: string): Promise<BaseBackup[]> {
  const rows = await db
    .selectFrom('backups')
    .select(['id', 'meta'])
    .where('target_id', '=', targetId)
    .where('status', '=', 'completed')
    .where('deleted_at', 'is', null)
    .orderBy('started_at')
    .execute();
  const out: BaseBackup[] = [];
  for (const r of rows) {
    const m = r.meta as { endTime?: string; engineMeta?: Record<string, string> };
    const e = m.engineMeta;
    if (e?.kind !== 'physical' || !e.stopLsn || !e.timeline || !e.walSegmentBytes || !m.endTime) continue;
    const segmentBytes = Number(e.walSegmentBytes);
    out.push({
      backupId: r.id,
      timeline: Number(e.timeline),
      stopLsn: e.stopLsn,
      stopSegno: Number(segmentOf(parseLsn(e.stopLsn), segmentBytes)),
      segmentBytes,
      consistentAt: new Date(m.endTime),
    });
  }
  return out;
}

/** Archived segments grouped into contiguous runs per timeline. */
export async function walRuns(db: Db, targetId: string): Promise<WalRun[]> {
  const rows = await db
    .selectFrom('wal_files')
    .select(['timeline', 'segno', 'completed_at'])
    .where('target_id', '=', targetId)
    .where('deleted_at', 'is', null)
    .where('segno', 'is not', null)
    .orderBy('timeline')
    .orderBy('segno')
    .execute();
  const runs: WalRun[] = [];
  for (const r of rows) {
    const segno = Number(r.segno);
    const at = new Date(r.completed_at);
    const cur = runs[runs.length - 1];
    if (cur && cur.timeline === r.timeline && segno === cur.last + 1) {
      cur.last = segno;
      if (at > cur.lastCompletedAt) cur.lastCompletedAt = at;
    } else
      runs.push({
        timeline: r.timeline,
        first: segno,
        last: segno,
        firstCompletedAt: at,
        lastCompletedAt: at,
      });
  }
  return runs;
}

/** The run that holds segment `segno` of `timeline`. */
export function runHolding(runs: WalRun[], timeline: number, segno: number): WalRun | undefined {
  return runs.find((r) => r.timeline === timeline && r.first <= segno && segno <= r.last);
}

/**
 * What can be restored: from each base backup's consistent point to the end of the
 * contiguous WAL that continues it (or only its own end, when the archive does not
 * continue it), merged per timeline; and every hole in the archive after the oldest
 * base backup, with the time restores stop before it.
 */
export async function recoveryWindow(db: Db, targetId: string): Promise<RecoveryWindow> {
  const bases = await baseBackups(db, targetId);
  const runs = await walRuns(db, targetId);
  const raw: RecoveryRange[] = bases.map((b) => {
    const run = runHolding(runs, b.timeline, b.stopSegno);
    const to = run && run.lastCompletedAt > b.consistentAt ? run.lastCompletedAt : b.consistentAt;
    return { timeline: b.timeline, from: b.consistentAt, to, baseBackupIds: [b.backupId] };
  });
  raw.sort((a, b) => a.timeline - b.timeline || a.from.getTime() - b.from.getTime());
  const ranges: RecoveryRange[] = [];
  for (const r of raw) {
    const last = ranges[ranges.length - 1];
    if (last && last.timeline === r.timeline && r.from <= last.to) {
      if (r.to > last.to) last.to = r.to;
      last.baseBackupIds.push(...r.baseBackupIds);
    } else ranges.push({ ...r, baseBackupIds: [...r.baseBackupIds] });
  }
  return {
    earliest: ranges.length ? new Date(Math.min(...ranges.map((r) => r.from.getTime()))) : null,
    latest: ranges.length ? new Date(Math.max(...ranges.map((r) => r.to.getTime()))) : null,
    ranges,
    gaps: gapsIn(bases, runs),
    baseBackups: bases,
    runs,
  };
}

function gapsIn(bases: BaseBackup[], runs: WalRun[]): WalGap[] {
  const gaps: WalGap[] = [];
  for (const tl of new Set(bases.map((b) => b.timeline))) {
    const from = Math.min(...bases.filter((b) => b.timeline === tl).map((b) => b.stopSegno));
    const segBytes = bases.find((b) => b.timeline === tl)!.segmentBytes;
    const mine = runs.filter((r) => r.timeline === tl && r.last >= from);
    let expected = from;
    let before: WalRun | undefined;
    for (const r of mine) {
      if (r.first > expected)
        gaps.push({
          timeline: tl,
          missingFrom: segmentName(tl, BigInt(expected), segBytes),
          missingTo: segmentName(tl, BigInt(r.first - 1), segBytes),
          restorableUntil: before?.lastCompletedAt ?? null,
          walResumesAt: r.firstCompletedAt,
        });
      expected = r.last + 1;
      before = r;
    }
  }
  return gaps;
}
