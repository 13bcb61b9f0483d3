import {
  chainGuard,
  firstNeededSegment,
  type RetentionCandidate,
  type RetentionPolicy,
  selectRetention,
} from '@dbbackup/proto';
import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import { drillVerdicts } from './drill-verdicts.js';

/**
 * A target's backups as retention sees them in the catalogue: good = committed, not failed
 * by a verify, and not a backup whose newest drill failed; with the drills' verdicts (the
 * newest backup a drill proved stays while a newer one failed its drill) and each backup's
 * engineMeta (incremental chains). The retention preview and a backup's deletion read this.
 */
export async function catalogueCandidates(db: Db, targetId: string) {
  const rows = await db
    .selectFrom('backups')
    .select(['id', 'started_at', 'status', sql<Record<string, string> | null>`meta->'engineMeta'`.as('em')])
    .where('target_id', '=', targetId)
    .where('deleted_at', 'is', null)
    .execute();
  const failedVerify = new Set(
    (
      await db
        .selectFrom('jobs')
        .select('backup_id')
        .where('type', '=', 'verify')
        .where('state', '=', 'failed')
        .where('target_id', '=', targetId)
        .execute()
    ).map((j) => j.backup_id),
  );
  const drills = await drillVerdicts(db, targetId);
  const unproven = new Set(drills.unproven);
  const candidates: RetentionCandidate[] = rows.map((r) => ({
    id: r.id,
    startedAt: new Date(r.started_at).toISOString(),
    good: r.status === 'completed' && !failedVerify.has(r.id) && !unproven.has(r.id),
  }));
  const chain = rows.map((r) => ({
    backupId: r.id,
    startTime: new Date(r.started_at).toISOString(),
    engineMeta: r.em ?? undefined,
  }));
  return { candidates, chain, drills };
}

/**
 * What a policy would keep and delete, and why, as the catalogue sees the target: the rules
 * the agent applies to what its storage holds (`chainGuard` keeps what recovery points,
 * drills and incremental chains need), and for a physical target the archived WAL older
 * than the oldest base backup left, which goes with them.
 */
export async function retentionPreview(db: Db, targetId: string, policy: RetentionPolicy, now = new Date()) {
  const { candidates, chain, drills } = await catalogueCandidates(db, targetId);
  const d = selectRetention(candidates, policy, now);
  const good = new Set(candidates.filter((c) => c.good).map((c) => c.id));
  const keptBecause = chainGuard({
    metas: chain,
    good: (m) => good.has(m.backupId),
    policy,
    now,
    kept: d.keep.map((k) => k.id),
    drillKeep: new Set(drills.keep),
  });
  const stays: { id: string; reasons: string[] }[] = [];
  const gone: typeof d.delete = [];
  for (const x of d.delete) {
    const why = keptBecause(x.id);
    if (why) stays.push({ id: x.id, reasons: [why] });
    else gone.push(x);
  }
  const left = new Set(gone.map((x) => x.id));
  const before = firstNeededSegment(chain.filter((m) => !left.has(m.backupId) && good.has(m.backupId)));
  return {
    keep: [...d.keep, ...stays],
    delete: gone,
    wal: before ? await walBefore(db, targetId, before) : null,
  };
}

/** The target's catalogued WAL segments whose names sort before `before`: how many, their bytes, the oldest. */
async function walBefore(db: Db, targetId: string, before: string) {
  const r = await db
    .selectFrom('wal_files')
    .select((eb) => [
      eb.fn.countAll<string>().as('files'),
      eb.fn.sum<string | null>('size_bytes').as('bytes'),
      eb.fn.min<string | null>('name').as('oldest'),
    ])
    .where('target_id', '=', targetId)
    .where('segno', 'is not', null)
    .where('deleted_at', 'is', null)
    .where('name', '<', before)
    .executeTakeFirstOrThrow();
  return { before, files: Number(r.files), bytes: Number(r.bytes ?? 0), oldest: r.oldest };
}
