import { type AgentEventBody, type Command, targetDbName } from '@dbbackup/proto';
import { type Db, json } from '../db/database.js';
import type { JobState } from '../db/schema.js';
import { bumpAgentConfigLater } from './agent-config.js';
import { checkBackupResult, reject } from './agent-reports.js';
import { recordBackup } from './catalogue.js';
import { jobFinished } from './job-finished.js';

type Tx = Db;
type EventOf<T extends AgentEventBody['type']> = Extract<AgentEventBody, { type: T }>;

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
    .returning(['id', 'type', 'agent_id', 'target_id', 'backup_id', 'storage_id'])
    .executeTakeFirst();
}

/** Apply a command's lifecycle to its job (inside the event's transaction). */
export async function onCommandEvent(
  tx: Tx,
  agentId: string,
  e: EventOf<'command.started' | 'command.succeeded' | 'command.failed'>,
) {
  if (e.type === 'command.started') {
    await setJobState(tx, e.commandId, 'running');
    return;
  }
  if (e.type === 'command.failed') {
    const failed = await setJobState(tx, e.commandId, 'failed', { error: json(e.error) });
    if (failed) await jobFinished(tx, failed.id);
    // What drills proved changes what the agent's own retention counts as good.
    if (failed?.type === 'drill') await bumpAgentConfigLater(tx, failed.agent_id);
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
      storageId: job.storage_id ?? cmd.storage.id,
      storagePrefix: cmd.storage.prefix ?? '',
      dbType: cmd.target.engine,
      dbName: targetDbName(cmd.target),
      startedAfter: new Date(row.created_at),
      kekId: cmd.kek.kid,
    });
    await recordBackup(tx, agentId, job, job.storage_id ?? cmd.storage.id, r);
  } else {
    await tx
      .updateTable('jobs')
      .set({ result: json(e.result ?? null) })
      .where('id', '=', job.id)
      .execute();
  }
  await jobFinished(tx, job.id);
  if (job.type === 'drill') await bumpAgentConfigLater(tx, job.agent_id);
}

export async function onJobEvent(tx: Tx, agentId: string, e: EventOf<'job.progress' | 'job.log'>, at: Date) {
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
