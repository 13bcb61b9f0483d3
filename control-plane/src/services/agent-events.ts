import type { AgentEvent } from '@dbbackup/proto';
import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import { json } from '../db/database.js';
import { EventRejected, reject } from './agent-reports.js';
import { fireAlert } from './alerts.js';
import { appendAudit } from './audit.js';
import { transition } from './command-state.js';
import { onCommandEvent, onJobEvent } from './job-events.js';
import { redactEventBody } from './redaction.js';
import { onScheduledEvent } from './scheduled-runs.js';
import { onWalArchived, onWalPruned, onWalStatus } from './wal-archive.js';

function summarise(result: unknown): unknown {
  if (result && typeof result === 'object' && 'meta' in result) {
    const m = (result as { meta: Record<string, unknown> }).meta;
    return { backupId: m.backupId, objectKey: m.objectKey, sizeBytes: m.sizeBytes, sha256: m.sha256 };
  }
  return result ?? null;
}

const JOBLESS = new Set(['ping', 'probe', 'target.test']);

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

/**
 * Lock the agent's row and move its high-water mark to `seq` (never back), in one statement;
 * the mark before. The move rolls back with the transaction if the event does not apply.
 */
async function advanceAgentSeq(tx: Db, agentId: string, seq: number): Promise<number> {
  const { rows } = await sql<{ last: number | string }>`
    WITH old AS (SELECT last_event_seq FROM agents WHERE id = ${agentId} FOR UPDATE)
    UPDATE agents SET last_event_seq = greatest(agents.last_event_seq, ${seq}::bigint)
      FROM old WHERE agents.id = ${agentId}
    RETURNING old.last_event_seq AS last`.execute(tx);
  if (!rows[0]) throw new Error(`agent ${agentId} not found`);
  return Number(rows[0].last);
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

async function applyOnce(
  db: Db,
  agentId: string,
  event: AgentEvent,
  h: ApplyHooks,
): Promise<{ outcome: ApplyOutcome; upTo: number }> {
  return db.transaction().execute(async (tx) => {
    const txDb = tx as unknown as Db;
    const last = await advanceAgentSeq(txDb, agentId, event.seq);
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
        const kind = await transition(txDb, b.commandId, to, patch);
        // Commands that never have a job (a ping, a probe) skip the job update.
        if (kind && !JOBLESS.has(kind)) await onCommandEvent(txDb, agentId, b);
        else if (!kind) {
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
      case 'wal.archived':
        await onWalArchived(txDb, agentId, b);
        break;
      case 'wal.status':
        await onWalStatus(txDb, agentId, b);
        break;
      case 'wal.pruned':
        await onWalPruned(txDb, agentId, b);
        break;
      case 'log':
        break;
    }
    return { outcome: 'applied' as const, upTo: event.seq };
  });
}
