import { backupTargetPrefix, type StorageSpec, type TargetSpec, targetDbName } from '@dbbackup/proto';
import { openStore } from '../storage/open-store.js';

export interface Orphan {
  key: string;
  size: number;
  ageMs: number;
}

/**
 * Data objects with no meta.json beside them are not backups (invariant 2): an
 * upload that completed but whose job was interrupted before the commit marker.
 * Remove those under one target's prefix that are older than `graceMs` (an upload
 * in flight is younger, and is in `inFlight` besides), and say which.
 */
export async function sweepOrphans(o: {
  target: TargetSpec;
  storage: StorageSpec;
  naming: { env: string; agentName: string };
  graceMs: number;
  inFlight: ReadonlySet<string>;
  now?: Date;
}): Promise<Orphan[]> {
  const store = await openStore(o.storage);
  const prefix = store.key(
    backupTargetPrefix({ ...o.naming, dbType: o.target.engine, dbName: targetDbName(o.target) }),
  );
  const listing = await store.list(prefix);
  const keys = new Set(listing.map((x) => x.key));
  const now = (o.now ?? new Date()).getTime();
  const removed: Orphan[] = [];
  for (const x of listing) {
    if (x.key.endsWith('.meta.json') || keys.has(`${x.key}.meta.json`) || o.inFlight.has(x.key)) continue;
    const ageMs = now - x.modifiedAt.getTime();
    if (ageMs < o.graceMs) continue;
    await store.delete(x.key);
    removed.push({ key: x.key, size: x.size, ageMs });
  }
  return removed;
}

/** After a crash: a data object of an interrupted job is removed unless its commit marker was written. */
export async function removeUncommitted(storage: StorageSpec, key: string): Promise<boolean> {
  const store = await openStore(storage);
  // Committed, but its job ended (a crash) before the success was recorded: that job is
  // reported failed, so the backup goes too, commit marker first.
  if ((await store.size(`${key}.meta.json`)) !== undefined) await store.delete(`${key}.meta.json`);
  if ((await store.size(key)) === undefined) return false;
  await store.delete(key);
  return true;
}
