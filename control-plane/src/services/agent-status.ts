import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import type { AgentStatus } from '../db/schema.js';
import { notify, notifyEach } from './notifications.js';

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

/** Record `status` for agents that just moved to it: their history rows and (online/offline) notifications. */
async function recordTransitions(
  tx: Db,
  moved: { id: string; hostname: string }[],
  status: 'online' | 'offline',
  reason: string,
) {
  if (!moved.length) return;
  for (let i = 0; i < moved.length; i += 1000)
    await tx
      .insertInto('agent_status_history')
      .values(moved.slice(i, i + 1000).map((a) => ({ agent_id: a.id, status, reason })))
      .execute();
  await notifyEach(
    tx,
    status === 'offline' ? 'agent.offline' : 'agent.online',
    moved.map((a) => ({
      title: `Agent ${a.hostname} is ${status === 'offline' ? 'offline' : 'back online'}`,
      message: reason,
      agentId: a.id,
      host: a.hostname,
    })),
  );
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
    await recordTransitions(tx, back, 'online', reason);
    return back.map((a) => a.id);
  });
}

/**
 * Mark offline, in one statement, every online agent not heard from in `staleMs`, whichever
 * replica held its socket. No agent could be heard from while no control plane ran, so the
 * silence is counted from `notBefore` at the earliest: the sweeper passes its process's start
 * plus the reconnect grace (less the window), so a restarting fleet has time to come back.
 * Returns the ids it changed.
 */
export async function sweepStaleAgents(db: Db, staleMs: number, notBefore = new Date(0)): Promise<string[]> {
  if (Date.now() - staleMs < notBefore.getTime()) return [];
  return db.transaction().execute(async (tx) => {
    const gone = await tx
      .updateTable('agents')
      .set({ status: 'offline' })
      .where('status', '=', 'online')
      .where('last_seen_at', '<', sql<Date>`now() - make_interval(secs => ${staleMs / 1000})`)
      .returning(['id', 'hostname'])
      .execute();
    await recordTransitions(tx, gone, 'offline', 'no heartbeat');
    return gone.map((a) => a.id);
  });
}
