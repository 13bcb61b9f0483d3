import {
  type BackupMeta,
  parseLsn,
  type RetentionPolicy,
  segmentName,
  segmentOf,
  type TargetSpec,
  WAL_SEGMENT_NAME,
  type WalPruned,
  walTargetPrefix,
} from '@dbbackup/proto';
import type { ObjectStore } from '../storage/object-store.js';

/** Retention of a physical target's chain: the base backups recovery points need, and the WAL nobody needs. */

const DAY = 86_400_000;
const isBase = (m: BackupMeta) => m.engineMeta?.kind === 'physical' && !!m.engineMeta.startLsn;

/**
 * With keepDays, every point of the last keepDays days must stay restorable: the newest
 * good base backup taken before that boundary is kept too (it is what restores the points
 * between the boundary and the next base backup).
 */
export function chainKeep(
  metas: BackupMeta[],
  good: (m: BackupMeta) => boolean,
  policy: RetentionPolicy,
  now: Date,
) {
  if (!policy.keepDays) return undefined;
  const from = now.getTime() - policy.keepDays * DAY;
  return metas
    .filter((m) => isBase(m) && good(m) && Date.parse(m.startTime) < from)
    .sort((a, b) => Date.parse(b.startTime) - Date.parse(a.startTime))[0]?.backupId;
}

/** The first WAL segment the oldest remaining base backup needs (undefined: no base backup left). */
export function firstNeededSegment(remaining: BackupMeta[]): string | undefined {
  const names = remaining.filter(isBase).map((m) => {
    const e = m.engineMeta!;
    const bytes = Number(e.walSegmentBytes);
    return segmentName(Number(e.timeline), segmentOf(parseLsn(e.startLsn!), bytes), bytes);
  });
  return names.sort()[0];
}

/**
 * Delete the target's archived WAL segments older than the oldest kept base backup's start
 * (meta.json first, then the data); nothing when no base backup is kept. History files stay
 * (they are small, and a later timeline needs them).
 */
export async function pruneWal(o: {
  store: ObjectStore;
  target: TargetSpec;
  naming: { env: string; agentName: string };
  kept: BackupMeta[];
  log: (level: 'info' | 'warn' | 'error', m: string) => void;
}): Promise<WalPruned | undefined> {
  const before = firstNeededSegment(o.kept);
  if (!before) return undefined;
  const prefix = o.store.key(walTargetPrefix({ ...o.naming, targetName: o.target.name }));
  const listing = await o.store.list(prefix);
  let files = 0;
  for (const { key } of listing) {
    if (key.endsWith('.meta.json')) continue;
    const name = /\/([0-9A-F]{24})_[0-9a-f]{8}\.zst\.enc$/.exec(key)?.[1];
    if (!name || !WAL_SEGMENT_NAME.test(name) || name >= before) continue;
    await o.store.delete(`${key}.meta.json`);
    await o.store.delete(key);
    files++;
  }
  if (!files) return undefined;
  o.log(
    'info',
    `retention: deleted ${files} WAL files older than ${before}, the oldest kept base backup's start`,
  );
  return { type: 'wal.pruned', targetId: o.target.id, before, files };
}
