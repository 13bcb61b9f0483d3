import { type AgentEventBody, targetDbName } from '@dbbackup/proto';
import { type Db, json } from '../db/database.js';
import { checkBackupResult, reject } from './agent-reports.js';
import { recordBackup } from './catalogue.js';
import { jobFinished } from './job-finished.js';
import { targetSpecFromRow } from './target-specs.js';

type Tx = Db;

type ScheduledEvent<T extends AgentEventBody['type']> = Extract<AgentEventBody, { type: T }>;

/**
 * A backup the agent ran on its own schedule: the job appears when it started
 * (reported late if the link was down), the catalogue entry when it finished.
 * Applied once per event sequence number; inserts are idempotent besides.
 */
export async function onScheduledEvent(
  tx: Tx,
  agentId: string,
  e: ScheduledEvent<'scheduled.started' | 'scheduled.finished'>,
) {
  if (e.type === 'scheduled.started') await scheduledStarted(tx, agentId, e);
  else await scheduledFinished(tx, agentId, e);
}

async function scheduledStarted(tx: Tx, agentId: string, e: ScheduledEvent<'scheduled.started'>) {
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
      storage_id: storageId,
      command_id: null,
      origin: 'schedule',
      schedule_id: e.scheduleId,
      run_while_disconnected: e.disconnected,
      params: json(params),
      created_at: startedAt,
      started_at: startedAt,
    })
    .execute();
}

/** The announced run finished: its job ends, and a good result goes into the catalogue. */
async function scheduledFinished(tx: Tx, agentId: string, e: ScheduledEvent<'scheduled.finished'>) {
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
    .returning(['id', 'target_id', 'schedule_id', 'run_while_disconnected', 'storage_id', 'params'])
    .executeTakeFirstOrThrow();
  if (r)
    await recordBackup(tx, agentId, job, job.storage_id ?? p.storageId, r, {
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
