import { randomUUID } from 'node:crypto';
import {
  BackupMeta as BackupMetaSchema,
  type BackupResult,
  type Command,
  restoreDestinationProblem,
  StorageSpec,
  summariseMeta,
  TargetSpec,
  targetDbName,
} from '@dbbackup/proto';
import type { JWK } from 'jose';
import {
  type KekSource,
  KeyBindingRefused,
  KeyUnavailable,
  rewrapForAgent,
} from '../crypto/key-encryption-key.js';
import type { SecretBox } from '../crypto/secret-box.js';
import { type Db, json } from '../db/database.js';
import type { JobState } from '../db/schema.js';
import { conflict, notFound, ProblemError } from '../http/problem.js';
import { checkBackupResult, reject } from './agent-reports.js';
import { fireAlert } from './alerts.js';
import { createCommand } from './commands.js';
import { jobFinished } from './job-finished.js';

type Tx = Db;

/** The storage profile as the agent needs it: with its credentials, unsealed. Never returned by the API. */
export async function storageSpecFor(db: Db, box: SecretBox, storageId: string): Promise<StorageSpec> {
  const row = await db
    .selectFrom('storage_profiles')
    .selectAll()
    .where('id', '=', storageId)
    .executeTakeFirst();
  if (!row) throw notFound('storage profile');
  const credentials = row.secret_enc
    ? (JSON.parse(box.open(row.secret_enc)) as { accessKeyId: string; secretAccessKey: string })
    : undefined;
  return StorageSpec.parse({
    ...row.config,
    kind: row.kind,
    id: row.id,
    ...(credentials ? { credentials } : {}),
  });
}

/** The storage profile without its credentials: what a command row may hold. */
export async function storageRefFor(db: Db, box: SecretBox, storageId: string): Promise<StorageSpec> {
  const { credentials: _omit, ...rest } = (await storageSpecFor(db, box, storageId)) as StorageSpec & {
    credentials?: unknown;
  };
  return rest as StorageSpec;
}

/**
 * Put the storage credentials back into a command on its way to the agent.
 * Command rows never hold them; the storage profile keeps them sealed.
 */
export async function hydrateCommand(db: Db, box: SecretBox, command: Command): Promise<Command> {
  if ('storage' in command && command.storage) {
    return { ...command, storage: await storageSpecFor(db, box, command.storage.id) } as Command;
  }
  return command;
}

/** A target row as the wire's TargetSpec. */
export function targetSpecFromRow(row: {
  id: string;
  engine: string;
  name: string;
  connection: unknown;
  secret_ref: unknown;
  options: unknown;
}) {
  return TargetSpec.parse({
    id: row.id,
    engine: row.engine,
    name: row.name,
    connection: row.connection,
    secretRef: row.secret_ref,
    options: row.options,
  });
}

export async function targetSpecFor(db: Db, targetId: string) {
  const row = await db.selectFrom('targets').selectAll().where('id', '=', targetId).executeTakeFirst();
  if (!row) throw notFound('target');
  return { row, spec: targetSpecFromRow(row) };
}

async function agentFor(db: Db, agentId: string) {
  const a = await db
    .selectFrom('agents')
    .select(['id', 'hostname', 'labels', 'status', 'encryption_jwk'])
    .where('id', '=', agentId)
    .executeTakeFirst();
  if (!a) throw notFound('agent');
  if (a.status === 'revoked') throw conflict('agent has been revoked', 'agent-revoked');
  return a;
}

async function insertJob(
  db: Db,
  o: {
    type: 'backup' | 'verify' | 'restore';
    agentId: string;
    targetId: string | null;
    backupId: string | null;
    command: Command;
    jobId: string;
    params?: unknown;
    createdBy: string | null;
    ttlSeconds: number;
  },
) {
  return db.transaction().execute(async (tx) => {
    const commandId = await createCommand(tx as unknown as Db, {
      agentId: o.agentId,
      command: o.command,
      ttlSeconds: o.ttlSeconds,
      createdBy: o.createdBy,
    });
    try {
      await tx
        .insertInto('jobs')
        .values({
          id: o.jobId,
          type: o.type,
          state: 'queued',
          agent_id: o.agentId,
          target_id: o.targetId,
          backup_id: o.backupId,
          command_id: commandId,
          params: json(o.params ?? {}),
          created_by: o.createdBy,
        })
        .execute();
    } catch (err) {
      if ((err as { constraint?: string }).constraint === 'jobs_one_backup_per_target') {
        const running = await db
          .selectFrom('jobs')
          .select(['id', 'state'])
          .where('target_id', '=', o.targetId)
          .where('type', '=', 'backup')
          .where('state', 'in', ['queued', 'running'])
          .executeTakeFirst();
        throw new ProblemError(
          409,
          'Conflict',
          `a backup of this target is already ${running?.state ?? 'queued or running'}`,
          {
            type: 'backup-in-progress',
            extra: { jobId: running?.id },
          },
        );
      }
      throw err;
    }
    return { jobId: o.jobId, commandId };
  });
}

export async function startBackupJob(
  db: Db,
  box: SecretBox,
  kekSource: KekSource,
  targetId: string,
  createdBy: string | null,
  ttlSeconds: number,
) {
  const kek = await kekSource.current();
  const { row, spec } = await targetSpecFor(db, targetId);
  const agent = await agentFor(db, row.agent_id);
  const storage = await storageRefFor(db, box, row.storage_id);
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
    command,
    jobId,
    createdBy,
    ttlSeconds,
  });
}

export async function startRestoreOrVerify(
  db: Db,
  box: SecretBox,
  backupId: string,
  o:
    | { type: 'verify' }
    | {
        type: 'restore';
        database?: string | undefined;
        conflict: 'fail' | 'clean' | 'create';
        tables?: string[] | undefined;
        targetId?: string | undefined;
      },
  createdBy: string | null,
  ttlSeconds: number,
) {
  const b = await db.selectFrom('backups').selectAll().where('id', '=', backupId).executeTakeFirst();
  if (!b) throw notFound('backup');
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
  const agent = await agentFor(db, row.agent_id);
  if (!agent.encryption_jwk)
    throw conflict('this agent has no encryption key; re-enrol it', 'agent-key-missing');
  // Commands carry a bounded summary; the agent reads a long table list from meta.json.
  const meta = summariseMeta(BackupMetaSchema.parse(b.meta));
  const storage = await storageRefFor(db, box, b.storage_id);
  // The re-wrapped key is bound to this backup and this agent, and expires a day after the command.
  let rewrapped: Awaited<ReturnType<typeof rewrapForAgent>>;
  try {
    rewrapped = await rewrapForAgent(
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
      new Date(Date.now() + (ttlSeconds + 86_400) * 1000),
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
  const wrappedKeyForAgent = rewrapped.jwe;
  const jobId = randomUUID();
  const base = { jobId, backupId, target: spec, storage, meta, wrappedKeyForAgent };
  const command: Command =
    o.type === 'verify'
      ? { kind: 'verify', ...base }
      : {
          kind: 'restore',
          ...base,
          database,
          conflict: o.conflict,
          ...(o.tables ? { tables: o.tables } : {}),
        };
  const params = o.type === 'restore' ? { database, conflict: o.conflict, tables: o.tables ?? null } : {};
  const started = await insertJob(db, {
    type: o.type,
    agentId: agent.id,
    targetId,
    backupId,
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
  return started;
}

// A stalled job the agent later reports finished is reconciled to its real outcome.
const JOB_FROM: Record<JobState, JobState[]> = {
  queued: [],
  running: ['queued'],
  succeeded: ['queued', 'running', 'stalled'],
  failed: ['queued', 'running', 'stalled'],
  cancelled: ['queued', 'running'],
  stalled: ['running'],
};

async function setJobState(tx: Tx, commandId: string, to: JobState, patch: Record<string, unknown> = {}) {
  const now = new Date();
  return tx
    .updateTable('jobs')
    .set({ state: to, ...(to === 'running' ? { started_at: now } : { finished_at: now }), ...patch })
    .where('command_id', '=', commandId)
    .where('state', 'in', JOB_FROM[to])
    .returning(['id', 'type', 'agent_id', 'target_id', 'backup_id'])
    .executeTakeFirst();
}

/** Apply a command's lifecycle to its job (inside the event's transaction). */
export async function onCommandEvent(
  tx: Tx,
  agentId: string,
  e: {
    type: 'command.started' | 'command.succeeded' | 'command.failed';
    commandId: string;
    result?: unknown;
    error?: { code: string; message: string };
  },
) {
  if (e.type === 'command.started') {
    await setJobState(tx, e.commandId, 'running');
    return;
  }
  if (e.type === 'command.failed') {
    const failed = await setJobState(tx, e.commandId, 'failed', { error: json(e.error) });
    if (failed) await jobFinished(tx, failed.id);
    return;
  }
  const job = await setJobState(tx, e.commandId, 'succeeded', { result: json(null) });
  if (!job) return;
  if (job.type === 'backup') {
    if (job.agent_id !== agentId) reject(`job ${job.id} belongs to another agent`);
    // Checked against what the command asked for: its backup id, target, storage and key.
    const row = await tx
      .selectFrom('commands')
      .select(['payload', 'created_at'])
      .where('id', '=', e.commandId)
      .executeTakeFirstOrThrow();
    const cmd = row.payload as Omit<Extract<Command, { kind: 'backup' }>, 'kind'>;
    const r = await checkBackupResult(tx, e.result, {
      agentId,
      backupId: cmd.backupId,
      targetId: cmd.target.id,
      storageId: cmd.storage.id,
      storagePrefix: cmd.storage.prefix ?? '',
      dbType: cmd.target.engine,
      dbName: targetDbName(cmd.target),
      startedAfter: new Date(row.created_at),
      kekId: cmd.kek.kid,
    });
    await recordBackup(tx, agentId, job, cmd.storage.id, r);
  } else {
    await tx
      .updateTable('jobs')
      .set({ result: json(e.result ?? null) })
      .where('id', '=', job.id)
      .execute();
  }
  await jobFinished(tx, job.id);
}

/** Put a committed backup into the catalogue (once) and give its job a summary as result. */
async function recordBackup(
  tx: Tx,
  agentId: string,
  job: { id: string; target_id: string | null },
  storageId: string,
  r: BackupResult,
  extra: { scheduleId?: string | null; runWhileDisconnected?: boolean } = {},
) {
  await tx
    .insertInto('backups')
    .values({
      id: r.meta.backupId,
      target_id: job.target_id,
      agent_id: agentId,
      storage_id: storageId,
      object_key: r.meta.objectKey,
      meta_key: r.metaKey,
      filename: r.meta.filename,
      size_bytes: r.meta.sizeBytes,
      sha256: r.meta.sha256,
      status: r.meta.status,
      started_at: r.meta.startTime,
      finished_at: r.meta.endTime,
      meta: json(r.meta),
      schedule_id: extra.scheduleId ?? null,
      run_while_disconnected: extra.runWhileDisconnected ?? false,
      key_bound: true,
      meta_kid: r.meta.kekId,
    })
    .onConflict((oc) => oc.doNothing())
    .execute();
  // The job's result keeps the catalogue entry, not the wrapped key a second time.
  await tx
    .updateTable('jobs')
    .set({
      result: json({
        backupId: r.meta.backupId,
        objectKey: r.meta.objectKey,
        sizeBytes: r.meta.sizeBytes,
        sha256: r.meta.sha256,
        uploadRetries: r.uploadRetries ?? 0,
      }),
    })
    .where('id', '=', job.id)
    .execute();
}

/**
 * A backup the agent ran on its own schedule: the job appears when it started
 * (reported late if the link was down), the catalogue entry when it finished.
 * Applied once per event sequence number; inserts are idempotent besides.
 */
export async function onScheduledEvent(
  tx: Tx,
  agentId: string,
  e:
    | {
        type: 'scheduled.started';
        jobId: string;
        backupId: string;
        targetId: string;
        scheduleId: string;
        storageId: string;
        disconnected: boolean;
        catchUp: boolean;
        startedAt: string;
      }
    | {
        type: 'scheduled.finished';
        jobId: string;
        ok: boolean;
        result?: unknown;
        error?: { code: string; message: string } | undefined;
        finishedAt: string;
      },
) {
  if (e.type === 'scheduled.started') {
    // The run is fixed here, from the control plane's own records: this agent's target,
    // that target's schedule, the schedule's storage. The result is checked against it.
    const target = await tx.selectFrom('targets').selectAll().where('id', '=', e.targetId).executeTakeFirst();
    if (!target || target.agent_id !== agentId)
      reject(`scheduled run of target ${e.targetId}, which is not a target of this agent`);
    const schedule = await tx
      .selectFrom('schedules')
      .select(['id', 'target_id', 'options'])
      .where('id', '=', e.scheduleId)
      .executeTakeFirst();
    if (!schedule || schedule.target_id !== target.id)
      reject(`scheduled run of schedule ${e.scheduleId}, which is not a schedule of target ${target.id}`);
    const storageId = schedule.options.storageId ?? target.storage_id;
    if (e.storageId !== storageId)
      reject(`scheduled run into storage ${e.storageId}; the schedule backs up into ${storageId}`);
    const startedAt = new Date(e.startedAt);
    if (Number.isNaN(startedAt.getTime())) reject(`scheduled run start ${e.startedAt} is not a time`);
    const taken = await tx
      .selectFrom('jobs')
      .select('id')
      .where((eb) => eb.or([eb('id', '=', e.jobId), eb('backup_id', '=', e.backupId)]))
      .executeTakeFirst();
    const catalogued = await tx
      .selectFrom('backups')
      .select('id')
      .where('id', '=', e.backupId)
      .executeTakeFirst();
    if (taken || catalogued) reject(`job ${e.jobId} or backup ${e.backupId} already exists`);
    const spec = targetSpecFromRow(target);
    const storage = await tx
      .selectFrom('storage_profiles')
      .select('config')
      .where('id', '=', storageId)
      .executeTakeFirstOrThrow();
    const params: ScheduledRunParams = {
      scheduleId: e.scheduleId,
      storageId,
      catchUp: e.catchUp,
      targetId: target.id,
      engine: spec.engine,
      dbName: targetDbName(spec),
      storagePrefix: String((storage.config as { prefix?: unknown }).prefix ?? ''),
    };
    await tx
      .insertInto('jobs')
      .values({
        id: e.jobId,
        type: 'backup',
        state: 'running',
        agent_id: agentId,
        target_id: target.id,
        backup_id: e.backupId,
        command_id: null,
        origin: 'schedule',
        schedule_id: e.scheduleId,
        run_while_disconnected: e.disconnected,
        params: json(params),
        created_at: startedAt,
        started_at: startedAt,
      })
      .execute();
    return;
  }
  const known = await tx
    .selectFrom('jobs')
    .select(['id', 'agent_id', 'origin', 'state', 'backup_id', 'params', 'created_at'])
    .where('id', '=', e.jobId)
    .executeTakeFirst();
  if (!known || known.agent_id !== agentId || known.origin !== 'schedule')
    reject(`scheduled run ${e.jobId} was never announced by this agent`);
  if (known.state !== 'running' && known.state !== 'stalled')
    reject(`scheduled run ${e.jobId} already finished (${known.state})`);
  const p = known.params as unknown as ScheduledRunParams;
  const r =
    e.ok && known.backup_id
      ? await checkBackupResult(tx, e.result, {
          agentId,
          backupId: known.backup_id,
          targetId: p.targetId,
          storageId: p.storageId,
          storagePrefix: p.storagePrefix,
          dbType: p.engine,
          dbName: p.dbName,
          startedAfter: new Date(known.created_at),
        })
      : undefined;
  const job = await tx
    .updateTable('jobs')
    .set({
      state: e.ok ? 'succeeded' : 'failed',
      finished_at: new Date(e.finishedAt),
      ...(e.ok ? {} : { error: json(e.error ?? { code: 'error', message: 'failed' }) }),
    })
    .where('id', '=', e.jobId)
    .where('agent_id', '=', agentId)
    .where('state', 'in', ['running', 'stalled'])
    .returning(['id', 'target_id', 'schedule_id', 'run_while_disconnected', 'params'])
    .executeTakeFirstOrThrow();
  if (r)
    await recordBackup(tx, agentId, job, p.storageId, r, {
      scheduleId: job.schedule_id,
      runWhileDisconnected: job.run_while_disconnected,
    });
  await jobFinished(tx, job.id);
}

/** What a scheduled run was fixed to when it was announced (the job's params). */
interface ScheduledRunParams {
  scheduleId: string;
  storageId: string;
  catchUp: boolean;
  targetId: string;
  engine: string;
  dbName: string;
  storagePrefix: string;
}

export async function onJobEvent(
  tx: Tx,
  agentId: string,
  e:
    | { type: 'job.progress'; jobId: string; phase: string; bytesIn: number; bytesOut: number }
    | { type: 'job.log'; jobId: string; level: string; message: string },
  at: Date,
) {
  const job = await tx
    .selectFrom('jobs')
    .select(['id', 'started_at'])
    .where('id', '=', e.jobId)
    .where('agent_id', '=', agentId)
    .executeTakeFirst();
  if (!job) return;
  if (e.type === 'job.log') {
    await tx
      .insertInto('job_logs')
      .values({ job_id: e.jobId, level: e.level, message: e.message, at })
      .execute();
    return;
  }
  const elapsed = job.started_at ? (at.getTime() - new Date(job.started_at).getTime()) / 1000 : 0;
  const progress = {
    phase: e.phase,
    bytesDumped: e.bytesIn,
    bytesStored: e.bytesOut,
    rateBytesPerSecond: elapsed > 0 ? Math.round(e.bytesIn / elapsed) : null,
    at: at.toISOString(),
  };
  await tx
    .updateTable('jobs')
    .set({ progress: json(progress) })
    .where('id', '=', e.jobId)
    .execute();
}
