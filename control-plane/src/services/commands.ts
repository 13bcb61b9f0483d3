import { randomUUID } from 'node:crypto';
import type { AgentEvent, Command } from '@dbbackup/proto';
import { sql } from 'kysely';
import { type Db, json } from '../db/database.js';
import type { CommandState, CommandsTable } from '../db/schema.js';
import { EventRejected, reject } from './agent-reports.js';
import { fireAlert } from './alerts.js';
import { appendAudit } from './audit.js';
import { jobFinished } from './job-finished.js';
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
    // No API view shows a wrapped or re-wrapped key (restore, verify and meta.rewrite carry one).
    payload: redactKeys(row.payload),
    state: row.state,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    expiresAt: row.expires_at,
    deliveredAt: row.delivered_at,
    acknowledgedAt: row.acknowledged_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    deliveries: row.deliveries,
    result: redactKeys(row.result),
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

export type ApplyOutcome = 'applied' | 'duplicate' | 'rejected';

/** A failure worth trying the same event again for: serialization, deadlock, lost connection, timeout. */
export function isTransient(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string') return false;
  return (
    /^(40001|40P01|08...|57P0[1-3]|57014|53...|55P03)$/.test(code) ||
    /^E(CONNRESET|PIPE|CONNREFUSED)$/.test(code)
  );
}

/** A failure no retry will cure: this event can never apply (a constraint, bad data). */
function isPermanent(err: unknown): boolean {
  if (err instanceof EventRejected) return true;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^(22|23)...$/.test(code);
}

export interface ApplyHooks {
  /** A sequence gap at the start of a session: events the control plane acknowledged earlier were lost here. */
  onGap: (expected: number, got: number) => void;
  /** An event refused (it changed nothing, it is recorded, alerted and acknowledged). */
  onRejected?: (seq: number, type: string, reason: string) => void;
}

/**
 * Apply one agent event exactly once, or record it as rejected. A transient
 * database failure is retried a few times and then thrown (the session closes,
 * nothing is acknowledged, the agent sends the event again); an event that can
 * never apply — refused by a check, or failing on a constraint — is recorded
 * with its reason, raised as an alert and audited, and acknowledged so the
 * stream moves on. The high-water mark never passes an event that was neither.
 */
export async function applyAgentEvent(
  db: Db,
  agentId: string,
  event: AgentEvent,
  h: ApplyHooks,
): Promise<{ outcome: ApplyOutcome; upTo: number }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await applyOnce(db, agentId, event, h);
    } catch (err) {
      if (isPermanent(err)) {
        const reason =
          err instanceof EventRejected
            ? err.message
            : `could not be applied: ${(err as Error).message}`.slice(0, 1000);
        return recordRejected(db, agentId, event, reason, h);
      }
      if (!isTransient(err) || attempt >= 4) throw err;
      await new Promise((r) => setTimeout(r, 25 * 2 ** attempt));
    }
  }
}

async function lockAgentSeq(tx: Db, agentId: string) {
  const agent = await tx
    .selectFrom('agents')
    .select('last_event_seq')
    .where('id', '=', agentId)
    .forUpdate()
    .executeTakeFirstOrThrow();
  return Number(agent.last_event_seq);
}

async function recordRejected(
  db: Db,
  agentId: string,
  event: AgentEvent,
  reason: string,
  h: ApplyHooks,
): Promise<{ outcome: ApplyOutcome; upTo: number }> {
  const r = await db.transaction().execute(async (tx) => {
    const txDb = tx as unknown as Db;
    const last = await lockAgentSeq(txDb, agentId);
    if (event.seq <= last) return { outcome: 'duplicate' as const, upTo: last };
    await insertEvent(txDb, agentId, event, reason);
    await tx.updateTable('agents').set({ last_event_seq: event.seq }).where('id', '=', agentId).execute();
    const agent = await tx
      .selectFrom('agents')
      .select('hostname')
      .where('id', '=', agentId)
      .executeTakeFirstOrThrow();
    await fireAlert(txDb, {
      kind: 'agent_event_rejected',
      subject: `agent:${agentId}`,
      message: `agent ${agent.hostname} reported something the control plane refused: ${reason}`,
      details: { agentId, seq: event.seq, type: event.body.type, reason },
    });
    await appendAudit(txDb, {
      actor: `agent:${agent.hostname}`,
      actorId: agentId,
      action: `agent.event.${event.body.type}`,
      target: `agent:${agentId}`,
      outcome: 'denied',
      detail: { seq: event.seq, reason },
    });
    return { outcome: 'rejected' as const, upTo: event.seq };
  });
  if (r.outcome === 'rejected') h.onRejected?.(event.seq, event.body.type, reason);
  return r;
}

/** Keep an event (with no wrapped key in it), applied or rejected with its reason. */
async function insertEvent(tx: Db, agentId: string, event: AgentEvent, rejectedReason: string | null) {
  await tx
    .insertInto('agent_events')
    .values({
      agent_id: agentId,
      seq: event.seq,
      type: event.body.type,
      body: json(redactEventBody(event.body)),
      rejected_reason: rejectedReason,
    })
    .onConflict((oc) => oc.doNothing())
    .execute();
}

/** An event body as the API may show it: no wrapped keys. */
export function redactEventBody(body: unknown): unknown {
  return redactKeys(body);
}

const KEY_FIELDS = new Set(['wrappedKey', 'wrappedKeyForAgent']);

/** A copy of a JSON value with every wrapped or re-wrapped key replaced by "[redacted]". */
export function redactKeys(v: unknown, depth = 0): unknown {
  if (depth > 8 || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x) => redactKeys(x, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>))
    out[k] = KEY_FIELDS.has(k) && typeof x === 'string' ? '[redacted]' : redactKeys(x, depth + 1);
  return out;
}

async function applyOnce(
  db: Db,
  agentId: string,
  event: AgentEvent,
  h: ApplyHooks,
): Promise<{ outcome: ApplyOutcome; upTo: number }> {
  return db.transaction().execute(async (tx) => {
    const txDb = tx as unknown as Db;
    const last = await lockAgentSeq(txDb, agentId);
    if (event.seq <= last) return { outcome: 'duplicate' as const, upTo: last };
    // Events are sent in order and deleted by the agent only once acknowledged, so a
    // gap at the start of a session means this database lost events it had acknowledged
    // (restored from an older backup). Refusing would wedge the agent forever; accept and
    // say so. Within a session the gateway closes on a gap instead (agent-session.ts).
    if (event.seq !== last + 1) h.onGap(last + 1, event.seq);
    await insertEvent(txDb, agentId, event, null);
    const b = event.body;
    switch (b.type) {
      case 'command.started':
      case 'command.succeeded':
      case 'command.failed': {
        const to =
          b.type === 'command.started' ? 'running' : b.type === 'command.succeeded' ? 'succeeded' : 'failed';
        const patch =
          b.type === 'command.succeeded'
            ? { agentId, result: summarise(b.result) }
            : b.type === 'command.failed'
              ? { agentId, error: b.error }
              : { agentId };
        if (await transition(txDb, b.commandId, to, patch)) await onCommandEvent(txDb, agentId, b);
        else {
          const mine = await txDb
            .selectFrom('commands')
            .select('id')
            .where('id', '=', b.commandId)
            .where('agent_id', '=', agentId)
            .executeTakeFirst();
          // A late repeat about one of its own commands is harmless; about anyone else's, refused.
          if (!mine) reject(`command ${b.commandId} is not a command of this agent`);
        }
        break;
      }
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
