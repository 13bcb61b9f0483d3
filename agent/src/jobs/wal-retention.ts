import {
  type BackupMeta,
  firstNeededSegment,
  type TargetSpec,
  WAL_SEGMENT_NAME,
  type WalPruned,
  walTargetPrefix,
} from '@dbbackup/proto';
import type { ObjectStore } from '../storage/object-store.js';

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
