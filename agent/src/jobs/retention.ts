import {
  BackupMeta,
  backupTargetPrefix,
  chainGuard,
  type RetentionCandidate,
  type RetentionPolicy,
  type StorageSpec,
  selectOne,
  selectRetention,
  type TargetSpec,
  targetDbName,
  type WalPruned,
} from '@dbbackup/proto';
import { readAll } from '../storage/object-store.js';
import { openStore } from '../storage/open-store.js';
import { pruneWal } from './wal-retention.js';

export interface RetentionOutcome {
  kept: number;
  deleted: { backupId: string; objectKey: string; reason: string }[];
}

/**
 * Apply a target's retention policy to what the storage holds (not to what the
 * control plane believes): list the target's folder, read every meta.json, let
 * the pure selection decide, then delete each backup meta.json first (so it
 * stops existing) and its data second. A listing that fails or comes back
 * truncated, or a meta.json that cannot be read, deletes nothing.
 */
export async function applyRetention(o: {
  target: TargetSpec;
  storage: StorageSpec;
  naming: { env: string; agentName: string };
  policy: RetentionPolicy;
  now?: Date;
  /** Backups whose newest restore drill failed (the control plane says which): never counted as good. */
  unproven?: ReadonlySet<string>;
  /** Backups kept whatever the policy says: the newest proven one while a newer one failed its drill. */
  keep?: ReadonlySet<string>;
  log: (level: 'info' | 'warn' | 'error', m: string) => void;
  onDeleted: (d: { backupId: string; objectKey: string; reason: string }) => Promise<void>;
  /** A physical target's WAL older than its oldest kept base backup was deleted. */
  onWalPruned?: (e: WalPruned) => Promise<void>;
  /** Delete this one backup instead of applying the policy (an operator's request), or fail saying why not. */
  only?: { backupId: string; reason: string };
}): Promise<RetentionOutcome> {
  const store = await openStore(o.storage);
  const { metas, sizes } = await readTargetMetas(store, o);
  // Good: committed, its data object there with the size the metadata records, and not
  // failed by a restore drill (so the newest proven backup is never deleted for it).
  const candidates: RetentionCandidate[] = metas.map((m) => ({
    id: m.backupId,
    startedAt: m.startTime,
    good: m.status === 'completed' && sizes.get(m.objectKey) === m.sizeBytes && !o.unproven?.has(m.backupId),
  }));
  const decision = o.only
    ? selectOne(candidates, o.only.backupId, o.only.reason)
    : selectRetention(candidates, o.policy, o.now ?? new Date());
  if ('refused' in decision) {
    const m = `not deleted: ${decision.refused}`;
    o.log('error', m);
    throw new Error(m);
  }
  const isGood = (m: BackupMeta) => candidates.find((c) => c.id === m.backupId)?.good === true;
  const keptBecause = chainGuard({
    metas,
    good: isGood,
    policy: o.policy,
    now: o.now ?? new Date(),
    kept: decision.keep.map((k) => k.id),
    drillKeep: o.keep,
  });
  const deleted: RetentionOutcome['deleted'] = [];
  for (const d of decision.delete) {
    const why = keptBecause(d.id);
    if (why) {
      o.log('info', `retention: kept ${d.id}, ${why}`);
      if (o.only) throw new Error(`not deleted: ${why}`);
      continue;
    }
    const meta = metas.find((m) => m.backupId === d.id)!;
    await store.delete(`${meta.objectKey}.meta.json`);
    await store.delete(meta.objectKey);
    const entry = { backupId: meta.backupId, objectKey: meta.objectKey, reason: d.reason };
    deleted.push(entry);
    o.log('info', `retention: deleted ${meta.objectKey} (${d.reason})`);
    await o.onDeleted(entry);
  }
  o.log('info', `retention: kept ${decision.keep.length}, deleted ${deleted.length}`);
  const gone = new Set(deleted.map((d) => d.backupId));
  const kept = metas.filter((m) => !gone.has(m.backupId) && isGood(m));
  const pruned = await pruneWal({ store, ...o, kept });
  if (pruned) await o.onWalPruned?.(pruned);
  return { kept: decision.keep.length, deleted };
}

/** Every meta.json of the target in its folder, and each object's size; any failure deletes nothing. */
async function readTargetMetas(
  store: Awaited<ReturnType<typeof openStore>>,
  o: {
    target: TargetSpec;
    naming: { env: string; agentName: string };
    log: (level: 'error', m: string) => void;
  },
) {
  const prefix = store.key(
    backupTargetPrefix({ ...o.naming, dbType: o.target.engine, dbName: targetDbName(o.target) }),
  );
  let listing: { key: string; size: number }[];
  try {
    listing = await store.list(prefix);
  } catch (err) {
    const m = `retention: listing ${prefix} failed, nothing deleted: ${(err as Error).message}`;
    o.log('error', m);
    throw new Error(m);
  }
  const sizes = new Map(listing.map((l) => [l.key, l.size]));
  const metas: BackupMeta[] = [];
  for (const { key } of listing) {
    if (!key.endsWith('.meta.json')) continue;
    let meta: BackupMeta;
    try {
      meta = BackupMeta.parse(JSON.parse((await readAll(store, key)).toString('utf8')));
    } catch (err) {
      const m = `retention: cannot read ${key}, nothing deleted: ${(err as Error).message}`;
      o.log('error', m);
      throw new Error(m);
    }
    if (meta.targetId === o.target.id) metas.push(meta);
  }
  return { metas, sizes };
}
