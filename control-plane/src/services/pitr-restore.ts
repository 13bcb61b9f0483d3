import { randomUUID } from 'node:crypto';
import {
  BackupMeta as BackupMetaSchema,
  type Command,
  formatLsn,
  parseLsn,
  type RecoveryTarget,
  segmentOf,
  segmentStartLsn,
  summariseMeta,
  walKeyId,
} from '@dbbackup/proto';
import type { JWK } from 'jose';
import type { Selectable } from 'kysely';
import type { SecretBox } from '../crypto/secret-box.js';
import type { Db } from '../db/database.js';
import type { WalFilesTable } from '../db/schema.js';
import { conflict, notFound, ProblemError } from '../problem.js';
import { ancestorRefs, rewrapOrRefuse } from './base-chain.js';
import { agentFor, insertJob } from './job-creation.js';
import { type BaseBackup, type RecoveryWindow, recoveryWindow, runHolding } from './recovery-window.js';
import { storageRefFor } from './storage-specs.js';
import { targetSpecFromRow } from './target-specs.js';

/** The most WAL files one restore command carries (its frame stays under 1 MiB). */
export const MAX_WAL_FILES = 1200;
/** Segments fetched past the one a time target falls in: recovery must see a commit after it to stop. */
const MARGIN_SEGMENTS = 2;

export interface PitrRequest {
  target: RecoveryTarget;
  dataDirectory: string;
  port: number;
}

const iso = (d: Date | null) => d?.toISOString() ?? 'none';

function outside(w: RecoveryWindow, what: string): ProblemError {
  const ranges = w.ranges.map((r) => `${iso(r.from)} to ${iso(r.to)} (timeline ${r.timeline})`).join(', ');
  const gaps = w.gaps.length
    ? `; WAL is missing from ${w.gaps.map((g) => `${g.missingFrom} to ${g.missingTo} (restorable until ${iso(g.restorableUntil)})`).join(', ')}`
    : '';
  return new ProblemError(
    422,
    'Unprocessable Content',
    w.ranges.length
      ? `${what} is outside the recovery window: restorable ${ranges}${gaps}`
      : `${what} cannot be restored: this target has no physical base backup yet`,
    { type: 'outside-recovery-window' },
  );
}

/** The base backup and segment numbers a recovery target needs; a 422 naming the window when it is not restorable. */
export function planRecovery(w: RecoveryWindow, t: RecoveryTarget) {
  const candidates = w.baseBackups
    .map((b) => ({ b, run: runHolding(w.runs, b.timeline, b.stopSegno) }))
    .filter((c) => c.run);
  if (t.kind === 'latest') {
    const best = candidates.sort((x, y) => y.run!.last - x.run!.last || y.b.stopSegno - x.b.stopSegno)[0];
    const only = w.baseBackups[w.baseBackups.length - 1];
    if (!best && !only) throw outside(w, 'latest');
    if (!best) return { base: only!, from: only!.stopSegno, to: only!.stopSegno - 1, toEnd: true };
    return { base: best.b, from: best.b.stopSegno, to: best.run!.last, toEnd: true };
  }
  if (t.kind === 'time') {
    const at = new Date(t.time);
    if (Number.isNaN(at.getTime()))
      throw new ProblemError(422, 'Unprocessable Content', `${t.time} is not a time`, { type: 'validation' });
    const fits = candidates.filter((c) => c.b.consistentAt <= at && c.run!.lastCompletedAt >= at);
    const best = fits.sort((x, y) => y.b.consistentAt.getTime() - x.b.consistentAt.getTime())[0];
    if (!best) throw outside(w, t.time);
    const run = best.run!;
    const upTo = firstCompletedAtOrAfter(w, run, at);
    const to = Math.min(run.last, upTo + MARGIN_SEGMENTS);
    return { base: best.b, from: best.b.stopSegno, to, toEnd: to === run.last };
  }
  const lsn = parseLsn(t.lsn);
  const fits = candidates.filter(
    (c) => parseLsn(c.b.stopLsn) <= lsn && Number(segmentOf(lsn, c.b.segmentBytes)) <= c.run!.last,
  );
  const best = fits.sort((x, y) => y.b.stopSegno - x.b.stopSegno)[0];
  if (!best) throw outside(w, `LSN ${formatLsn(lsn)}`);
  const to = Math.min(best.run!.last, Number(segmentOf(lsn, best.b.segmentBytes)) + MARGIN_SEGMENTS);
  return { base: best.b, from: best.b.stopSegno, to, toEnd: to === best.run!.last };
}

/** The first segment of `run` completed at or after `at` (recovery to `at` needs it), from the index. */
function firstCompletedAtOrAfter(
  w: RecoveryWindow & { completions?: Map<number, Date> },
  run: { first: number; last: number },
  at: Date,
): number {
  const c = w.completions;
  if (!c) return run.last;
  for (let s = run.first; s <= run.last; s++) if ((c.get(s) ?? at) >= at) return s;
  return run.last;
}

/**
 * Start a point-in-time restore of a physical target into a new data directory on its
 * own host: the plan (base backup, WAL files), every data key re-wrapped for the agent
 * (bound to its file, this agent, a restore, expiring), and the job with its command.
 */
export async function startPitrRestore(
  db: Db,
  box: SecretBox,
  targetId: string,
  req: PitrRequest,
  createdBy: string | null,
  ttlSeconds: number,
) {
  const { row, spec } = await physicalTarget(
    db,
    targetId,
    'this target takes logical dumps: restore one of its backups with POST /backups/{id}/restore',
  );
  const w = await recoveryWindowWithCompletions(db, targetId);
  const plan = planRecovery(w, req.target);
  const chain = await chainCommandParts(db, box, row, spec, plan, ttlSeconds);
  const command: Command = {
    kind: 'pitr.restore',
    ...chain.parts,
    walToArchiveEnd: plan.toEnd,
    recoveryTarget: req.target,
    dataDirectory: req.dataDirectory,
    port: req.port,
  };
  return insertJob(db, {
    type: 'pitr_restore',
    agentId: row.agent_id,
    targetId,
    backupId: plan.base.backupId,
    storageId: chain.storageId,
    command,
    jobId: chain.parts.jobId,
    params: {
      recoveryTarget: req.target,
      dataDirectory: req.dataDirectory,
      port: req.port,
      walFiles: chain.parts.wal.length,
    },
    createdBy,
    ttlSeconds,
  });
}

/**
 * Start a restore drill of a physical target's chain: the newest restorable base backup and
 * all WAL after it, replayed by its agent in a scratch data directory (a drill job, judged
 * by the same limits and alerts as every drill). Replay must reach the newest WAL file.
 */
export async function startPitrDrill(
  db: Db,
  box: SecretBox,
  targetId: string,
  limits: { maxRestoreSeconds?: number | undefined; maxDataAgeSeconds?: number | undefined },
  createdBy: string | null,
  ttlSeconds: number,
) {
  const { row, spec } = await physicalTarget(db, targetId, 'not a physical target');
  const w = await recoveryWindowWithCompletions(db, targetId);
  if (!w.baseBackups.length) throw conflict('this target has no base backup to drill yet', 'no-backup');
  const plan = planRecovery(w, { kind: 'latest' });
  const chain = await chainCommandParts(db, box, row, spec, plan, ttlSeconds);
  const last = BigInt(Math.max(plan.to, plan.base.stopSegno));
  const command: Command = {
    kind: 'pitr.drill',
    ...chain.parts,
    expectEndLsn: formatLsn(segmentStartLsn(last, plan.base.segmentBytes)),
    ...(limits.maxRestoreSeconds !== undefined ? { maxRestoreSeconds: limits.maxRestoreSeconds } : {}),
  };
  return insertJob(db, {
    type: 'drill',
    agentId: row.agent_id,
    targetId,
    backupId: plan.base.backupId,
    storageId: chain.storageId,
    command,
    jobId: chain.parts.jobId,
    params: {
      maxRestoreSeconds: limits.maxRestoreSeconds ?? null,
      maxDataAgeSeconds: limits.maxDataAgeSeconds ?? null,
      walFiles: chain.parts.wal.length,
    },
    createdBy,
    ttlSeconds,
  });
}

/** What a restore and a drill of a chain carry: the base backup and the WAL of the plan, keys re-wrapped. */
async function chainCommandParts(
  db: Db,
  box: SecretBox,
  row: { agent_id: string; storage_id: string },
  spec: ReturnType<typeof targetSpecFromRow>,
  plan: ReturnType<typeof planRecovery>,
  ttlSeconds: number,
) {
  const targetId = spec.id;
  const files = await walFilesFor(db, targetId, plan.base, plan.from, plan.to);
  if (files.length > MAX_WAL_FILES)
    throw new ProblemError(
      422,
      'Unprocessable Content',
      `this restore needs ${files.length} WAL files; one restore takes at most ${MAX_WAL_FILES}: take a newer base backup`,
      { type: 'too-much-wal' },
    );
  const { b, meta, baseKey, wal, recipient, expiresAt } = await keysFor(
    db,
    box,
    row.agent_id,
    targetId,
    plan.base.backupId,
    files,
    ttlSeconds,
  );
  const parts = {
    jobId: randomUUID(),
    target: spec,
    base: {
      backupId: b.id,
      storage: await storageRefFor(db, b.storage_id),
      meta,
      wrappedKeyForAgent: baseKey,
    },
    walStorage: await storageRefFor(db, row.storage_id),
    wal,
  };
  const ancestors = await ancestorRefs(db, box, recipient, targetId, meta, expiresAt);
  return { parts: ancestors ? { ...parts, ancestors } : parts, storageId: b.storage_id };
}

/** The base backup's and every WAL file's data key, re-wrapped for the agent (bound, for a restore, expiring). */
async function keysFor(
  db: Db,
  box: SecretBox,
  agentId: string,
  targetId: string,
  backupId: string,
  files: Awaited<ReturnType<typeof walFilesFor>>,
  ttlSeconds: number,
) {
  const agent = await agentFor(db, agentId);
  if (!agent.encryption_jwk)
    throw conflict('this agent has no encryption key; re-enrol it', 'agent-key-missing');
  const recipient = { agentId: agent.id, publicJwk: agent.encryption_jwk as JWK };
  const expiresAt = new Date(Date.now() + (ttlSeconds + 86_400) * 1000);
  const b = await db.selectFrom('backups').selectAll().where('id', '=', backupId).executeTakeFirstOrThrow();
  const meta = summariseMeta(BackupMetaSchema.parse(b.meta));
  const base = {
    backupId: b.id,
    agentId: b.agent_id,
    targetId,
    wrappedKey: meta.wrappedKey,
    kekId: meta.kekId,
  };
  const baseKey = await rewrapOrRefuse(db, box, { ...base, keyBound: b.key_bound }, recipient, expiresAt);
  const wal = await walKeysFor(db, box, files, targetId, recipient, expiresAt);
  return { b, meta, baseKey, wal, recipient, expiresAt };
}

/** A target that takes physical backups, or 404 / 409 with `why` it cannot be used here. */
export async function physicalTarget(db: Db, targetId: string, why: string) {
  const row = await db.selectFrom('targets').selectAll().where('id', '=', targetId).executeTakeFirst();
  if (!row) throw notFound('target');
  const spec = targetSpecFromRow(row);
  if (!spec.options.physical) throw conflict(why, 'not-physical');
  return { row, spec };
}

/** The window plus each segment's completion time, which a time target's WAL list is cut by. */
async function recoveryWindowWithCompletions(db: Db, targetId: string) {
  const w = await recoveryWindow(db, targetId);
  const rows = await db
    .selectFrom('wal_files')
    .select(['segno', 'completed_at'])
    .where('target_id', '=', targetId)
    .where('deleted_at', 'is', null)
    .where('segno', 'is not', null)
    .execute();
  return { ...w, completions: new Map(rows.map((r) => [Number(r.segno), new Date(r.completed_at)])) };
}

/** The history file of the base's timeline (after the first) and segments from..to of it. */
async function walFilesFor(db: Db, targetId: string, base: BaseBackup, from: number, to: number) {
  const history = `${base.timeline.toString(16).toUpperCase().padStart(8, '0')}.history`;
  return db
    .selectFrom('wal_files')
    .selectAll()
    .where('target_id', '=', targetId)
    .where('deleted_at', 'is', null)
    .where((eb) =>
      eb.or([
        eb.and([eb('timeline', '=', base.timeline), eb('segno', '>=', from), eb('segno', '<=', to)]),
        eb('name', '=', history),
      ]),
    )
    .orderBy('name')
    .execute();
}

/** Archived WAL files as a command carries them: each data key re-wrapped for the recipient agent. */
export async function walKeysFor(
  db: Db,
  box: SecretBox,
  files: Selectable<WalFilesTable>[],
  targetId: string,
  recipient: { agentId: string; publicJwk: JWK },
  expiresAt: Date,
) {
  const out = [];
  for (const f of files) {
    const k = {
      backupId: walKeyId(f.name),
      agentId: f.agent_id,
      targetId,
      wrappedKey: f.wrapped_key,
      kekId: f.kek_id,
    };
    out.push({
      name: f.name,
      objectKey: f.object_key,
      sizeBytes: f.size_bytes,
      wrappedKeyForAgent: await rewrapOrRefuse(db, box, { ...k, keyBound: true }, recipient, expiresAt),
    });
  }
  return out;
}
