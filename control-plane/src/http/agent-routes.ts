import { PingCommand, ProbeCommand } from '@dbbackup/proto';
import { Hono } from 'hono';
import { sql } from 'kysely';
import { z } from 'zod';
import { conflict, notFound } from '../problem.js';
import { setAgentStatus } from '../services/agent-status.js';
import { cancelAgentCommands, createCommand, getCommand } from '../services/command-state.js';
import { redactEventBody } from '../services/redaction.js';
import type { AuthEnv } from './auth.js';
import { parseJson, uuidParam } from './input.js';
import { keyset, paged, pageOf, timeKey } from './paging.js';
import type { Ctx, RouteDeps } from './route-deps.js';
import { agentView, commandView } from './views.js';

const CommandBody = z.object({
  // Only what cannot reach data or keys: every other command is made by its own endpoint,
  // which checks what it names (a raw backup could be sealed to a key of the caller's).
  command: z.discriminatedUnion('kind', [PingCommand, ProbeCommand]),
  ttlSeconds: z
    .number()
    .int()
    .min(1)
    .max(30 * 86_400)
    .optional(),
});

/** Agents: the fleet, each agent's status history, revocation, raw commands and the event stream. */
export function agentRoutes(d: RouteDeps) {
  const { db } = d;
  const api = new Hono<AuthEnv>();
  api.get('/agents', async (c) => {
    const page = pageOf(c, 100);
    const rows = await keyset(
      db.selectFrom('agents').selectAll(),
      { time: 'enrolled_at' },
      'asc',
      page,
    ).execute();
    const total = await db
      .selectFrom('agents')
      .select(sql<number>`count(*)::int`.as('n'))
      .executeTakeFirstOrThrow();
    const p = paged(rows, page, (r) => timeKey(r.enrolled_at, r.id));
    return c.json({ items: p.items.map(agentView), nextCursor: p.nextCursor, total: total.n });
  });
  api.get('/agents/:id', (c) => agentDetail(c, d));
  api.delete('/agents/:id', async (c) => {
    const id = uuidParam(c, 'id', 'agent');
    const row = await db.selectFrom('agents').select(['status']).where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('agent');
    if (row.status !== 'revoked') {
      await setAgentStatus(db, id, 'revoked', `revoked by ${c.get('principal').name}`);
      await cancelAgentCommands(db, id, 'agent revoked');
      await d.bus.publish({ kind: 'revoke', agentId: id });
    }
    return c.body(null, 204);
  });
  api.post('/agents/:id/commands', (c) => sendCommand(c, d));
  api.get('/agents/:id/commands', async (c) => {
    const id = uuidParam(c, 'id', 'agent');
    const page = pageOf(c, 200);
    const q = db.selectFrom('commands').selectAll().where('agent_id', '=', id);
    const rows = await keyset(q, { time: 'created_at' }, 'desc', page).execute();
    const p = paged(rows, page, (r) => timeKey(r.created_at, r.id));
    return c.json({ items: p.items.map(commandView), nextCursor: p.nextCursor });
  });
  api.get('/commands/:id', async (c) => {
    const row = await getCommand(db, uuidParam(c, 'id', 'command'));
    if (!row) throw notFound('command');
    return c.json(commandView(row));
  });
  api.get('/agents/:id/events', (c) => agentEvents(c, d));
  return api;
}

async function agentDetail(c: Ctx, { db }: RouteDeps) {
  const id = uuidParam(c, 'id', 'agent');
  const row = await db.selectFrom('agents').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('agent');
  const history = await db
    .selectFrom('agent_status_history')
    .select(['status', 'reason', 'at'])
    .where('agent_id', '=', id)
    .orderBy('id', 'desc')
    .limit(100)
    .execute();
  return c.json({ ...agentView(row), facts: row.facts, history });
}

async function sendCommand(c: Ctx, d: RouteDeps) {
  const { db } = d;
  const id = uuidParam(c, 'id', 'agent');
  const body = await parseJson(c, CommandBody);
  const agent = await db.selectFrom('agents').select(['status']).where('id', '=', id).executeTakeFirst();
  if (!agent) throw notFound('agent');
  if (agent.status === 'revoked') throw conflict('agent has been revoked', 'agent-revoked');
  const commandId = await createCommand(db, {
    agentId: id,
    command: body.command,
    ttlSeconds: body.ttlSeconds ?? d.commandTtlSeconds,
    createdBy: c.get('principal').tokenId,
  });
  await d.bus.publish({ kind: 'commands', agentId: id });
  const row = await getCommand(db, commandId);
  if (!row) throw notFound('command');
  return c.json(commandView(row), 202, { location: `/api/v1/commands/${commandId}` });
}

/** The agent's event stream, newest first; refused events carry their reason, no event a wrapped key. */
async function agentEvents(c: Ctx, { db }: RouteDeps) {
  const id = uuidParam(c, 'id', 'agent');
  const page = pageOf(c, 500);
  const q = db
    .selectFrom('agent_events')
    .select(['seq', 'type', 'body', 'received_at', 'rejected_reason', 'agent_id'])
    .where('agent_id', '=', id);
  const rows = await keyset(q, { number: 'seq' }, 'desc', page, 'agent_id').execute();
  const p = paged(rows, page, (r) => ({ k: Number(r.seq), id: r.agent_id }));
  return c.json({
    nextCursor: p.nextCursor,
    items: p.items.map((r) => ({
      seq: r.seq,
      type: r.type,
      body: redactEventBody(r.body),
      receivedAt: r.received_at,
      ...(r.rejected_reason ? { rejected: r.rejected_reason } : {}),
    })),
  });
}
