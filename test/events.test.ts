import { randomUUID } from 'node:crypto';
import { type ControlPlane, cleanupAll, query, waitFor } from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { connectWs, controlPlane, getAgent, getCommand, hello, rawIdentity } from './support.js';

let cp: ControlPlane;
beforeAll(async () => {
  cp = await controlPlane();
});
afterAll(cleanupAll);

type Msg = { type: string; payload: Record<string, unknown> };

function inbox(ws: WebSocket) {
  const msgs: Msg[] = [];
  ws.on('message', (d) => msgs.push(JSON.parse(d.toString()) as Msg));
  return {
    msgs,
    next: (type: string, after = 0) =>
      waitFor(async () => msgs.slice(after).find((m) => m.type === type), { what: type }).then(
        (r) => r.value,
      ),
  };
}

const event = (seq: number, body: Record<string, unknown>) =>
  JSON.stringify({
    v: 1,
    type: 'event',
    id: randomUUID(),
    payload: { seq, at: new Date().toISOString(), body },
  });

describe('agent events', () => {
  it('are applied once per sequence number and acknowledged by high-water mark', async () => {
    const id = await rawIdentity(cp);
    const c = await connectWs(cp, await id.jwt());
    if (!c.ok) throw new Error('refused');
    const box = inbox(c.ws);
    c.ws.send(hello(id.agentId));
    const welcome = await box.next('welcome');
    expect(welcome.payload.eventsAckedUpTo).toBe(0);

    const cmd = await cp.api<{ id: string }>('POST', `/api/v1/agents/${id.agentId}/commands`, {
      command: { kind: 'ping' },
    });
    const pushed = await box.next('command');
    expect(pushed.payload.commandId).toBe(cmd.body.id);

    c.ws.send(event(1, { type: 'command.started', commandId: cmd.body.id }));
    c.ws.send(event(2, { type: 'command.succeeded', commandId: cmd.body.id, result: { n: 1 } }));
    // Repeats, as after a reconnect: same sequence numbers, different content.
    c.ws.send(
      event(1, { type: 'command.failed', commandId: cmd.body.id, error: { code: 'x', message: 'late' } }),
    );
    c.ws.send(event(2, { type: 'log', level: 'info', message: 'dup' }));
    await waitFor(async () => box.msgs.filter((m) => m.type === 'event.ack').length === 4, {
      what: 'four acks',
    });
    const acks = box.msgs.filter((m) => m.type === 'event.ack').map((m) => m.payload.upTo);
    expect(acks).toEqual([1, 2, 2, 2]);

    const c2 = await getCommand(cp, cmd.body.id);
    expect(c2.state).toBe('succeeded');
    expect(c2.result).toEqual({ n: 1 });
    const rows = await query<{ seq: number; type: string }>(
      cp.databaseUrl,
      'SELECT seq, type FROM agent_events WHERE agent_id = $1 ORDER BY seq',
      [id.agentId],
    );
    expect(rows.map((r) => [Number(r.seq), r.type])).toEqual([
      [1, 'command.started'],
      [2, 'command.succeeded'],
    ]);
    c.ws.terminate();

    // A new session is told the high-water mark, so the agent can drop what was applied.
    const again = await connectWs(cp, await id.jwt());
    if (!again.ok) throw new Error('refused');
    const box2 = inbox(again.ws);
    again.ws.send(hello(id.agentId));
    expect((await box2.next('welcome')).payload.eventsAckedUpTo).toBe(2);
    again.ws.terminate();
    await waitFor(async () => (await getAgent(cp, id.agentId)).status === 'offline', { what: 'offline' });
  });

  it('an event about another agent’s command changes nothing', async () => {
    const a = await rawIdentity(cp);
    const b = await rawIdentity(cp);
    const cmd = await cp.api<{ id: string }>('POST', `/api/v1/agents/${b.agentId}/commands`, {
      command: { kind: 'ping' },
    });
    const c = await connectWs(cp, await a.jwt());
    if (!c.ok) throw new Error('refused');
    const box = inbox(c.ws);
    c.ws.send(hello(a.agentId));
    await box.next('welcome');
    c.ws.send(event(1, { type: 'command.succeeded', commandId: cmd.body.id, result: {} }));
    await box.next('event.ack');
    expect((await getCommand(cp, cmd.body.id)).state).toBe('queued');
    c.ws.terminate();
  });
});
