import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import type { AgentStatus } from '../db/schema.js';
import { notify } from './notifications.js';

/**
 * Move an agent to a status and record the change in its history, in one
 * statement pair under a row lock. A revoked agent never changes status again.
 * Returns true if the status changed.
 */
export async function setAgentStatus(
  db: Db,
  agentId: string,
  status: AgentStatus,
  reason: string,
): Promise<boolean> {
  return db.transaction().execute(async (tx) => {
    const row = await tx
      .selectFrom('agents')
      .select(['status', 'hostname'])
      .where('id', '=', agentId)
      .forUpdate()
      .executeTakeFirst();
    if (!row || row.status === status || row.status === 'revoked') return false;
    if (status === 'offline' || (status === 'online' && row.status === 'offline')) {
      await notify(tx, status === 'offline' ? 'agent.offline' : 'agent.online', {
        title: `Agent ${row.hostname} is ${status === 'offline' ? 'offline' : 'back online'}`,
        message: reason,
        agentId,
        host: row.hostname,
      });
    }
    const patch: Record<string, unknown> = { status };
    if (status === 'online') patch.connected_at = new Date();
    if (status === 'revoked') patch.revoked_at = new Date();
    await tx.updateTable('agents').set(patch).where('id', '=', agentId).execute();
    await tx.insertInto('agent_status_history').values({ agent_id: agentId, status, reason }).execute();
    return true;
  });
}

/**
 * Bring back online those of `ids` that are marked offline (their heartbeats arrive again),
 * each with its history row and notification, in one transaction. Returns the ids it changed.
 */
export async function markOnlineAgain(db: Db, ids: string[], reason: string): Promise<string[]> {
  if (!ids.length) return [];
  return db.transaction().execute(async (tx) => {
    const back = await tx
      .updateTable('agents')
      .set({ status: 'online', connected_at: new Date() })
      .where('id', 'in', ids)
      .where('status', '=', 'offline')
      .returning(['id', 'hostname'])
      .execute();
    for (const a of back) {
      await notify(tx, 'agent.online', {
        title: `Agent ${a.hostname} is back online`,
        message: reason,
        agentId: a.id,
        host: a.hostname,
      });
      await tx
        .insertInto('agent_status_history')
        .values({ agent_id: a.id, status: 'online', reason })
        .execute();
    }
    return back.map((a) => a.id);
  });
}

/**
 * Mark offline every online agent not heard from in `staleMs`, whichever replica
 * held its socket. Returns the ids it changed.
 */
export async function sweepStaleAgents(db: Db, staleMs: number): Promise<string[]> {
  const stale = await db
    .selectFrom('agents')
    .select('id')
    .where('status', '=', 'online')
    .where('last_seen_at', '<', sql<Date>`now() - make_interval(secs => ${staleMs / 1000})`)
    .execute();
  const changed: string[] = [];
  for (const { id } of stale) {
    if (await setAgentStatus(db, id, 'offline', 'no heartbeat')) changed.push(id);
  }
  return changed;
}
