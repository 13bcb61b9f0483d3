import { type ControlPlane, cleanupAll, startAgent, waitFor } from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closed, connectWs, controlPlane, getAgent, hello, rawIdentity } from './support.js';

let cp: ControlPlane;
let bystander: Awaited<ReturnType<typeof startAgent>>;
beforeAll(async () => {
  cp = await controlPlane();
  bystander = await startAgent(cp);
  await waitFor(async () => (await getAgent(cp, bystander.id)).status === 'online', {
    what: 'bystander online',
  });
});
afterAll(cleanupAll);

async function openSession(sendHello = true) {
  const id = await rawIdentity(cp);
  const c = await connectWs(cp, await id.jwt());
  if (!c.ok) throw new Error(`refused ${c.status}`);
  if (sendHello) {
    c.ws.send(hello(id.agentId));
    await waitFor(async () => (await getAgent(cp, id.agentId)).status === 'online', { what: 'online' });
  }
  return c.ws;
}

const cases: [string, string | Buffer, number, RegExp][] = [
  ['malformed JSON', '{"v":1,"type":', 1007, /malformed JSON/],
  [
    'an unknown message type',
    JSON.stringify({ v: 1, type: 'format-disk', id: 'x', payload: {} }),
    1002,
    /unknown message type/,
  ],
  [
    'a payload of the wrong shape',
    JSON.stringify({ v: 1, type: 'event', id: 'x', payload: { seq: -1 } }),
    1002,
    /invalid event/,
  ],
  [
    'the wrong protocol version',
    JSON.stringify({ v: 2, type: 'ping', id: 'x', payload: { t: 1 } }),
    4001,
    /unsupported protocol major 2/,
  ],
  ['an oversized frame', Buffer.alloc(1024 * 1024 + 10, 0x20), 1009, /./],
];

describe('bad frames', () => {
  it.each(cases)('%s closes only that connection, with a reason', async (_name, frame, code, reason) => {
    const ws = await openSession();
    const closing = closed(ws);
    ws.send(frame);
    const r = await closing;
    expect(r.code).toBe(code);
    if (code !== 1009) expect(r.reason).toMatch(reason);
    const health = await fetch(`${cp.url}/healthz`);
    expect(health.status).toBe(200);
    expect((await getAgent(cp, bystander.id)).status).toBe('online');
    expect(bystander.proc.child.exitCode).toBeNull();
  });

  it('a first message other than hello closes the connection', async () => {
    const ws = await openSession(false);
    const closing = closed(ws);
    ws.send(JSON.stringify({ v: 1, type: 'ping', id: 'x', payload: { t: 1 } }));
    expect((await closing).reason).toMatch(/hello expected/);
  });

  it('a hello from an unsupported protocol major is refused with a clear reason', async () => {
    const id = await rawIdentity(cp);
    const c = await connectWs(cp, await id.jwt());
    if (!c.ok) throw new Error('refused');
    const closing = closed(c.ws);
    c.ws.send(
      JSON.stringify({
        v: 1,
        type: 'hello',
        id: 'x',
        payload: {
          agentId: id.agentId,
          agentVersion: 't',
          protocol: { major: 7, minor: 0 },
          eventsAckedUpTo: 0,
          recentCommandIds: [],
        },
      }),
    );
    const r = await closing;
    expect(r.code).toBe(4001);
    expect(r.reason).toMatch(/unsupported protocol 7\.0/);
  });

  it('a hello naming another agent is refused', async () => {
    const id = await rawIdentity(cp);
    const c = await connectWs(cp, await id.jwt());
    if (!c.ok) throw new Error('refused');
    const closing = closed(c.ws);
    c.ws.send(hello(bystander.id));
    expect((await closing).reason).toMatch(/does not match/);
    expect((await getAgent(cp, bystander.id)).status).toBe('online');
  });
});
