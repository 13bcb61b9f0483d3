import { type ControlPlane, cleanupAll, startAgent, waitFor } from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closed, connectWs, controlPlane, getAgent, hello, rawIdentity } from './support.js';

let cp: ControlPlane;
beforeAll(async () => {
  cp = await controlPlane();
});
afterAll(cleanupAll);

describe('revocation', () => {
  it('closes the socket within 1 s and refuses every reconnect', async () => {
    const id = await rawIdentity(cp);
    const c = await connectWs(cp, await id.jwt());
    if (!c.ok) throw new Error(`connect refused: ${c.status}`);
    c.ws.send(hello(id.agentId));
    await waitFor(async () => (await getAgent(cp, id.agentId)).status === 'online', { what: 'online' });
    const closing = closed(c.ws, 5000);
    const t0 = Date.now();
    const r = await cp.api('DELETE', `/api/v1/agents/${id.agentId}`);
    expect(r.status).toBe(204);
    const { code, reason } = await closing;
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(code).toBe(4003);
    expect(reason).toMatch(/revoked/);
    const again = await connectWs(cp, await id.jwt());
    expect(again.ok).toBe(false);
    if (!again.ok) {
      expect(again.status).toBe(401);
      expect(again.body.type).toMatch(/agent-revoked/);
    }
    expect((await getAgent(cp, id.agentId)).status).toBe('revoked');
    // Commands to a revoked agent are refused.
    const cmd = await cp.api('POST', `/api/v1/agents/${id.agentId}/commands`, { command: { kind: 'ping' } });
    expect(cmd.status).toBe(409);
  });

  it('the real agent process stops when revoked and refuses to come back', async () => {
    const agent = await startAgent(cp);
    await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
    const t0 = Date.now();
    await cp.api('DELETE', `/api/v1/agents/${agent.id}`);
    await agent.proc.waitForLine(/revoked/, 5000);
    expect(Date.now() - t0).toBeLessThan(1000);
    const { code } = await agent.proc.exited;
    expect(code).toBe(3);
    const again = agent.restart({});
    const { code: code2 } = await again.exited;
    expect(code2).toBe(3);
    expect(again.lines.some((l) => l.includes('agent has been revoked'))).toBe(true);
  });
});
