import { randomUUID } from 'node:crypto';
import type { AgentEvent, Command } from '@dbbackup/proto';
import { sql } from 'kysely';
import { type Db, json } from '../db/database.js';
import type { CommandState, CommandsTable } from '../db/schema.js';
import { onCommandEvent, onJobEvent, onScheduledEvent } from './jobs.js';
import { dispatchLatency } from './metrics.js';

function summarise(result: unknown): unknown {
  if (result && typeof result === 'object' && 'meta' in result) {
    const m = (result as { meta: Record<string, unknown> }).meta;
    return { backupId: m.backupId, objectKey: m.objectKey, sizeBytes: m.sizeBytes, sha256: m.sha256 };
  }
  return result ?? null;
}

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
const FROM: Record<CommandState, CommandState[]> = {
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

export function commandView(row: NonNullable<CommandRow>) {
  return {
    id: row.id,
    agentId: row.agent_id,
    kind: row.kind,
    payload: row.payload,
    state: row.state,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    expiresAt: row.expires_at,
    deliveredAt: row.delivered_at,
    acknowledgedAt: row.acknowledged_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    deliveries: row.deliveries,
    result: row.result,
    error: row.error,
  };
}

export function toWireCommand(row: Pick<CommandsTable, 'kind'> & { payload: unknown }): Command {
  return { ...(row.payload as object), kind: row.kind } as Command;
}

export async function transition(
  db: Db,
  id: string,
  to: CommandState,
  patch: Partial<Record<'result' | 'error', unknown>> & { agentId?: string } = {},
): Promise<boolean> {
  const now = new Date();
  const set: Record<string, unknown> = { state: to, updated_at: now };
  if (to === 'acknowledged') set.acknowledged_at = now;
  if (to === 'running') set.started_at = now;
  if (TERMINAL.includes(to)) set.finished_at = now;
  if (patch.result !== undefined) set.result = json(patch.result);
  if (patch.error !== undefined) set.error = json(patch.error);
  let q = db.updateTable('commands').set(set).where('id', '=', id).where('state', 'in', FROM[to]);
  if (patch.agentId) q = q.where('agent_id', '=', patch.agentId);
  const r = await q.returning('created_at').executeTakeFirst();
  if (r && to === 'acknowledged') {
    dispatchLatency.observe(Math.max(0, (now.getTime() - new Date(r.created_at).getTime()) / 1000));
  }
  return r !== undefined;
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
  const r = await db
    .updateTable('commands')
    .set({ state: 'expired', updated_at: new Date(), finished_at: new Date() })
    .where('state', 'in', FROM.expired)
    .where('expires_at', '<=', new Date())
    .executeTakeFirst();
  return Number(r.numUpdatedRows);
}

export async function cancelAgentCommands(db: Db, agentId: string, reason: string) {
  await db
    .updateTable('commands')
    .set({
      state: 'cancelled',
      updated_at: new Date(),
      finished_at: new Date(),
      error: json({ code: 'cancelled', message: reason }),
    })
    .where('agent_id', '=', agentId)
    .where('state', 'in', FROM.cancelled)
    .execute();
}

export type ApplyOutcome = 'applied' | 'duplicate';

/**
 * Apply one agent event exactly once. Events carry a per-agent sequence number;
 * the agent's high-water mark is moved under a row lock in the same transaction
 * as the event's effect, so a repeat (same or lower seq) changes nothing.
 * Returns the high-water mark to acknowledge.
 */
export async function applyAgentEvent(
  db: Db,
  agentId: string,
  event: AgentEvent,
  onGap: (expected: number, got: number) => void,
): Promise<{ outcome: ApplyOutcome; upTo: number }> {
  return db.transaction().execute(async (tx) => {
    const agent = await tx
      .selectFrom('agents')
      .select('last_event_seq')
      .where('id', '=', agentId)
      .forUpdate()
      .executeTakeFirstOrThrow();
    const last = agent.last_event_seq;
    if (event.seq <= last) return { outcome: 'duplicate' as const, upTo: last };
    // Events are sent in order and deleted by the agent only once acknowledged, so a
    // gap means this database lost events it had acknowledged (restored from an older
    // backup). Refusing would wedge the agent forever; accept and say so.
    if (event.seq !== last + 1) onGap(last + 1, event.seq);
    await tx
      .insertInto('agent_events')
      .values({ agent_id: agentId, seq: event.seq, type: event.body.type, body: json(event.body) })
      .onConflict((oc) => oc.doNothing())
      .execute();
    const txDb = tx as unknown as Db;
    const b = event.body;
    switch (b.type) {
      case 'command.started':
        if (await transition(txDb, b.commandId, 'running', { agentId }))
          await onCommandEvent(txDb, agentId, b);
        break;
      case 'command.succeeded': {
        // A backup's result carries its metadata; the catalogue (backups) holds it, the command keeps a summary.
        if (await transition(txDb, b.commandId, 'succeeded', { agentId, result: summarise(b.result) })) {
          await onCommandEvent(txDb, agentId, b);
        }
        break;
      }
      case 'command.failed':
        if (await transition(txDb, b.commandId, 'failed', { agentId, error: b.error }))
          await onCommandEvent(txDb, agentId, b);
        break;
      case 'job.progress':
      case 'job.log':
        await onJobEvent(txDb, agentId, b, new Date(event.at));
        break;
      case 'scheduled.started':
      case 'scheduled.finished':
        await onScheduledEvent(txDb, agentId, b);
        break;
      case 'backup.deleted':
        // Retention removed it from storage: the catalogue keeps a tombstone with the reason.
        await txDb
          .updateTable('backups')
          .set({ deleted_at: new Date(event.at), deleted_reason: b.reason })
          .where('id', '=', b.backupId)
          .where('agent_id', '=', agentId)
          .where('deleted_at', 'is', null)
          .execute();
        break;
      case 'log':
        break;
    }
    await tx.updateTable('agents').set({ last_event_seq: event.seq }).where('id', '=', agentId).execute();
    return { outcome: 'applied' as const, upTo: event.seq };
  });
}
