import { randomUUID } from 'node:crypto';
import {
  BackupMeta as BackupMetaSchema,
  type Command,
  restoreDestinationProblem,
  summariseMeta,
  targetDbName,
} from '@dbbackup/proto';
import type { JWK } from 'jose';
import type { Selectable } from 'kysely';
import {
  type KekSource,
  KeyBindingRefused,
  KeyUnavailable,
  rewrapForAgent,
} from '../crypto/key-encryption-key.js';
import type { SecretBox } from '../crypto/secret-box.js';
import { type Db, json } from '../db/database.js';
import type { BackupsTable } from '../db/schema.js';
import { conflict, notFound, ProblemError } from '../problem.js';
import { fireAlert } from './alerts.js';
import { createCommand } from './command-state.js';
import { storageRefFor } from './storage-specs.js';
import { targetSpecFor } from './target-specs.js';

/** A restore drill: into a scratch destination the agent makes; the limits its result is judged by. */
export interface DrillRequest {
  type: 'drill';
  maxRestoreSeconds?: number | undefined;
  maxDataAgeSeconds?: number | undefined;
}

/** What an operator asked to restore: where, what to do with what is there, which tables. */
export interface RestoreRequest {
  type: 'restore';
  database?: string | undefined;
  conflict: 'fail' | 'clean' | 'create';
  tables?: string[] | undefined;
  targetId?: string | undefined;
}

export async function agentFor(db: Db, agentId: string) {
  const a = await db
    .selectFrom('agents')
    .select(['id', 'hostname', 'labels', 'status', 'encryption_jwk'])
    .where('id', '=', agentId)
    .executeTakeFirst();
  if (!a) throw notFound('agent');
  if (a.status === 'revoked') throw conflict('agent has been revoked', 'agent-revoked');
  return a;
}

interface NewJob {
  type: 'backup' | 'verify' | 'restore' | 'drill' | 'pitr_restore' | 'wal_verify';
  agentId: string;
  targetId: string | null;
  backupId: string | null;
  storageId: string;
  command: Command;
  jobId: string;
  params?: unknown;
  createdBy: string | null;
  ttlSeconds: number;
}

/** A job and its command, in one transaction; the job row is returned as stored. */
export async function insertJob(db: Db, o: NewJob) {
  return db.transaction().execute(async (tx) => {
    const commandId = await createCommand(tx as unknown as Db, {
      agentId: o.agentId,
      command: o.command,
      ttlSeconds: o.ttlSeconds,
      createdBy: o.createdBy,
    });
    try {
      return await tx
        .insertInto('jobs')
        .values({
          id: o.jobId,
          type: o.type,
          state: 'queued',
          agent_id: o.agentId,
          target_id: o.targetId,
          backup_id: o.backupId,
          storage_id: o.storageId,
          command_id: commandId,
          params: json(o.params ?? {}),
          created_by: o.createdBy,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
    } catch (err) {
      if ((err as { constraint?: string }).constraint === 'jobs_one_backup_per_target')
        throw await backupInProgress(db, o.targetId);
      throw err;
    }
  });
}

async function backupInProgress(db: Db, targetId: string | null) {
  const running = await db
    .selectFrom('jobs')
    .select(['id', 'state'])
    .where('target_id', '=', targetId)
    .where('type', '=', 'backup')
    .where('state', 'in', ['queued', 'running'])
    .executeTakeFirst();
  return new ProblemError(
    409,
    'Conflict',
    `a backup of this target is already ${running?.state ?? 'queued or running'}`,
    { type: 'backup-in-progress', extra: { jobId: running?.id } },
  );
}

export async function startBackupJob(
  db: Db,
  kekSource: KekSource,
  targetId: string,
  createdBy: string | null,
  ttlSeconds: number,
) {
  const kek = await kekSource.current();
  const { row, spec } = await targetSpecFor(db, targetId);
  const agent = await agentFor(db, row.agent_id);
  const storage = await storageRefFor(db, row.storage_id);
  const jobId = randomUUID();
  const backupId = randomUUID();
  const command: Command = {
    kind: 'backup',
    jobId,
    backupId,
    target: spec,
    storage,
    kek: { kid: kek.kid, publicJwk: kek.publicJwk },
    naming: { env: agent.labels.env ?? 'default', agentName: agent.hostname },
  };
  return insertJob(db, {
    type: 'backup',
    agentId: agent.id,
    targetId,
    backupId,
    storageId: storage.id,
    command,
    jobId,
    createdBy,
    ttlSeconds,
  });
}

/** The target a restore or verify goes through, checked against the backup's engine and destination. */
async function restoreTarget(
  db: Db,
  b: Selectable<BackupsTable>,
  o: { type: 'verify' } | RestoreRequest | DrillRequest,
) {
  const targetId = (o.type === 'restore' && o.targetId) || b.target_id;
  if (!targetId)
    throw conflict('the backup’s target was deleted; name a target to restore with', 'target-required');
  const { row, spec } = await targetSpecFor(db, targetId);
  const backupEngine = String((b.meta as { dbType?: unknown }).dbType ?? '');
  if (spec.engine !== backupEngine)
    throw conflict(
      `a ${backupEngine} backup cannot be restored through a ${spec.engine} target`,
      'engine-mismatch',
    );
  const physical = (b.meta as { engineMeta?: { kind?: string } }).engineMeta?.kind === 'physical';
  if (physical && o.type !== 'verify')
    throw conflict(
      `a physical base backup is restored into a new data directory, to a point in time: POST /api/v1/targets/${targetId}/restore`,
      'physical-backup',
    );
  let database = '';
  if (o.type === 'restore') {
    const problem = restoreDestinationProblem(spec.engine, o.database);
    if (problem)
      throw new ProblemError(422, 'Unprocessable Content', `database: ${problem}`, {
        type: 'validation',
        extra: { errors: [{ path: 'database', message: problem }] },
      });
    database = o.database ?? targetDbName(spec);
  }
  return { targetId, row, spec, database };
}

/** The backup's data key re-wrapped for this agent: bound to the backup and the agent, expiring. */
async function rewrapKeyFor(
  db: Db,
  box: SecretBox,
  b: Selectable<BackupsTable>,
  meta: ReturnType<typeof summariseMeta>,
  agent: { id: string; encryption_jwk: unknown },
  expiresAt: Date,
) {
  try {
    return await rewrapForAgent(
      db,
      box,
      {
        backupId: b.id,
        agentId: b.agent_id,
        targetId: meta.targetId,
        wrappedKey: meta.wrappedKey,
        kekId: meta.kekId,
        keyBound: b.key_bound,
      },
      { agentId: agent.id, publicJwk: agent.encryption_jwk as JWK },
      expiresAt,
    );
  } catch (err) {
    if (err instanceof KeyBindingRefused)
      throw conflict(`this backup's data key is not its own: ${err.message}`, 'key-binding');
    if (err instanceof KeyUnavailable) {
      await fireAlert(db, {
        kind: 'key_unavailable',
        subject: `backup:${b.id}`,
        message: `backup ${b.id} cannot be opened: ${err.message}`,
        targetId: b.target_id,
        details: { backupId: b.id, kekId: meta.kekId },
      });
      throw conflict(`this backup cannot be opened: ${err.message}`, 'key-unavailable');
    }
    throw err;
  }
}

export async function startRestoreOrVerify(
  db: Db,
  box: SecretBox,
  backupId: string,
  o: { type: 'verify' } | RestoreRequest | DrillRequest,
  createdBy: string | null,
  ttlSeconds: number,
) {
  const b = await db.selectFrom('backups').selectAll().where('id', '=', backupId).executeTakeFirst();
  if (!b) throw notFound('backup');
  const { targetId, row, spec, database } = await restoreTarget(db, b, o);
  const agent = await agentFor(db, row.agent_id);
  if (!agent.encryption_jwk)
    throw conflict('this agent has no encryption key; re-enrol it', 'agent-key-missing');
  // Commands carry a bounded summary; the agent reads a long table list from meta.json.
  const meta = summariseMeta(BackupMetaSchema.parse(b.meta));
  const storage = await storageRefFor(db, b.storage_id);
  // The re-wrapped key expires a day after the command.
  const expiresAt = new Date(Date.now() + (ttlSeconds + 86_400) * 1000);
  const rewrapped = await rewrapKeyFor(db, box, b, meta, agent, expiresAt);
  const jobId = randomUUID();
  const base = { jobId, backupId, target: spec, storage, meta, wrappedKeyForAgent: rewrapped.jwe };
  const command = readBackCommand(o, base, database);
  const params =
    o.type === 'restore'
      ? { database, conflict: o.conflict, tables: o.tables ?? null }
      : o.type === 'drill'
        ? { maxRestoreSeconds: o.maxRestoreSeconds ?? null, maxDataAgeSeconds: o.maxDataAgeSeconds ?? null }
        : {};
  const job = await insertJob(db, {
    type: o.type,
    agentId: agent.id,
    targetId,
    backupId,
    storageId: b.storage_id,
    command,
    jobId,
    params,
    createdBy,
    ttlSeconds,
  });
  if (rewrapped.legacy)
    await db
      .insertInto('job_logs')
      .values({
        job_id: jobId,
        level: 'warn',
        message:
          'this backup was catalogued before data keys were bound to their backup; its key was re-wrapped on the legacy path',
      })
      .execute();
  return job;
}

/** The command that reads a backup back: verify, restore into `database`, or a drill. */
function readBackCommand(
  o: { type: 'verify' } | RestoreRequest | DrillRequest,
  base: Omit<Extract<Command, { kind: 'verify' }>, 'kind'>,
  database: string,
): Command {
  if (o.type === 'verify') return { kind: 'verify', ...base };
  if (o.type === 'drill')
    return {
      kind: 'drill',
      ...base,
      ...(o.maxRestoreSeconds !== undefined ? { maxRestoreSeconds: o.maxRestoreSeconds } : {}),
    };
  return {
    kind: 'restore',
    ...base,
    database,
    conflict: o.conflict,
    ...(o.tables ? { tables: o.tables } : {}),
  };
}
