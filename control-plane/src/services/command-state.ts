import { randomUUID } from 'node:crypto';
import type { Command } from '@dbbackup/proto';
import { sql } from 'kysely';
import { type Db, json } from '../db/database.js';
import type { CommandState, CommandsTable } from '../db/schema.js';
import { jobFinished } from './job-finished.js';
import { dispatchLatency } from './metrics.js';

/**
 * The command state machine:
 *
 *   queued -> delivered -> acknowledged -> running -> succeeded | failed
 *   queued | delivered -> expired   (TTL passed before the agent recorded it)
 *   queued | delivered | acknowledged -> cancelled (agent revoked)
 *
 * Each transition names the states it may leave from; a transition that finds
 * the command elsewhere changes nothing (repeats and late messages are harmless).
 */
export const FROM: Record<CommandState, CommandState[]> = {
  queued: [],
  delivered: ['queued'],
  acknowledged: ['queued', 'delivered'],
  running: ['queued', 'delivered', 'acknowledged'],
  succeeded: ['queued', 'delivered', 'acknowledged', 'running'],
  failed: ['queued', 'delivered', 'acknowledged', 'running'],
  cancelled: ['queued', 'delivered', 'acknowledged'],
  expired: ['queued', 'delivered'],
};

export const TERMINAL: CommandState[] = ['succeeded', 'failed', 'cancelled', 'expired'];

export type CommandRow = Awaited<ReturnType<typeof getCommand>>;

export async function createCommand(
  db: Db,
  {
    agentId,
    command,
    ttlSeconds,
    createdBy,
  }: { agentId: string; command: Command; ttlSeconds: number; createdBy: string | null },
) {
  const id = randomUUID();
  const { kind, ...payload } = command;
  await db
    .insertInto('commands')
    .values({
      id,
      agent_id: agentId,
      kind,
      payload: json(payload),
      state: 'queued',
      created_by: createdBy,
      expires_at: new Date(Date.now() + ttlSeconds * 1000),
    })
    .execute();
  return id;
}

export async function getCommand(db: Db, id: string) {
  return db.selectFrom('commands').selectAll().where('id', '=', id).executeTakeFirst();
}

export function toWireCommand(row: Pick<CommandsTable, 'kind'> & { payload: unknown }): Command {
  return { ...(row.payload as object), kind: row.kind } as Command;
}

/** Move a command to `to` when its state allows (and it is `agentId`'s); its kind if it moved. */
export async function transition(
  db: Db,
  id: string,
  to: CommandState,
  patch: Partial<Record<'result' | 'error', unknown>> & { agentId?: string } = {},
): Promise<string | undefined> {
  const now = new Date();
  const set: Record<string, unknown> = { state: to, updated_at: now };
  if (to === 'acknowledged') set.acknowledged_at = now;
  if (to === 'running') set.started_at = now;
  if (TERMINAL.includes(to)) set.finished_at = now;
  if (patch.result !== undefined) set.result = json(patch.result);
  if (patch.error !== undefined) set.error = json(patch.error);
  let q = db.updateTable('commands').set(set).where('id', '=', id).where('state', 'in', FROM[to]);
  if (patch.agentId) q = q.where('agent_id', '=', patch.agentId);
  const r = await q.returning(['created_at', 'kind']).executeTakeFirst();
  if (r && to === 'acknowledged') {
    dispatchLatency.observe(Math.max(0, (now.getTime() - new Date(r.created_at).getTime()) / 1000));
  }
  return r?.kind;
}

/** Commands to push to an agent now: not yet acknowledged and not expired, oldest first. */
export async function pendingCommands(db: Db, agentId: string) {
  return db
    .selectFrom('commands')
    .selectAll()
    .where('agent_id', '=', agentId)
    .where('state', 'in', ['queued', 'delivered'])
    .where('expires_at', '>', new Date())
    .orderBy('created_at')
    .execute();
}

export async function markDelivered(db: Db, id: string) {
  await db
    .updateTable('commands')
    .set({
      state: sql`CASE WHEN state = 'queued' THEN 'delivered' ELSE state END`,
      delivered_at: new Date(),
      updated_at: new Date(),
      deliveries: sql`deliveries + 1`,
    })
    .where('id', '=', id)
    .where('state', 'in', ['queued', 'delivered'])
    .execute();
}

export async function expireCommands(db: Db): Promise<number> {
  return db.transaction().execute(async (tx) => {
    const rows = await tx
      .updateTable('commands')
      .set({ state: 'expired', updated_at: new Date(), finished_at: new Date() })
      .where('state', 'in', FROM.expired)
      .where('expires_at', '<=', new Date())
      .returning('id')
      .execute();
    await failJobsOf(
      tx as unknown as Db,
      rows.map((r) => r.id),
      { code: 'expired', message: 'the agent did not take the command before it expired' },
    );
    return rows.length;
  });
}

export async function cancelAgentCommands(db: Db, agentId: string, reason: string) {
  await db.transaction().execute(async (tx) => {
    const rows = await tx
      .updateTable('commands')
      .set({
        state: 'cancelled',
        updated_at: new Date(),
        finished_at: new Date(),
        error: json({ code: 'cancelled', message: reason }),
      })
      .where('agent_id', '=', agentId)
      .where('state', 'in', FROM.cancelled)
      .returning('id')
      .execute();
    await failJobsOf(
      tx as unknown as Db,
      rows.map((r) => r.id),
      { code: 'cancelled', message: `the command was cancelled: ${reason}` },
    );
  });
}

/**
 * A job ends when its command can no longer run: in the same transaction as the
 * command's expiry or cancellation, so the target takes new backups at once.
 */
async function failJobsOf(tx: Db, commandIds: string[], error: { code: string; message: string }) {
  if (!commandIds.length) return;
  const jobs = await tx
    .updateTable('jobs')
    .set({ state: 'failed', finished_at: new Date(), error: json(error) })
    .where('command_id', 'in', commandIds)
    .where('state', 'in', ['queued', 'running'])
    .returning('id')
    .execute();
  for (const j of jobs) await jobFinished(tx, j.id);
}
