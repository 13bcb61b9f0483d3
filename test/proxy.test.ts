import { type ControlPlane, cleanupAll, startAgent, startConnectProxy, waitFor } from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlane, getAgent } from './support.js';

let cp: ControlPlane;
beforeAll(async () => {
  cp = await controlPlane();
});
afterAll(cleanupAll);

describe('HTTP CONNECT proxy', () => {
  it('an agent whose only way out is the proxy enrols and stays online', async () => {
    const proxy = await startConnectProxy();
    const env = {
      HTTP_PROXY: proxy.url,
      HTTPS_PROXY: proxy.url,
      NO_PROXY: '',
      no_proxy: '',
      http_proxy: '',
      https_proxy: '',
    };
    const agent = await startAgent(cp, { env });
    const target = `127.0.0.1:${cp.port}`;
    // Enrolment went through the proxy.
    expect(proxy.connects.filter((c) => c === target).length).toBeGreaterThanOrEqual(1);
    await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', {
      what: 'online via proxy',
    });
    // Enrolment plus the WebSocket: at least two tunnels to the control plane, nothing else.
    expect(proxy.connects.filter((c) => c === target).length).toBeGreaterThanOrEqual(2);
    expect(proxy.connects.every((c) => c === target)).toBe(true);
    expect(proxy.plainRequests).toEqual([]);
    // Still online several heartbeats later.
    await new Promise((r) => setTimeout(r, 2000));
    expect((await getAgent(cp, agent.id)).status).toBe('online');
    expect(agent.proc.lines.some((l) => l.includes('"proxy":"http://127.0.0.1:'))).toBe(true);
  });

  it('when the proxy goes away the agent, which has no other way out, goes offline', async () => {
    const proxy = await startConnectProxy();
    const env = { HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url, NO_PROXY: '', no_proxy: '' };
    const agent = await startAgent(cp, { env });
    await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', {
      what: 'online via proxy',
    });
    await proxy.close();
    await waitFor(async () => (await getAgent(cp, agent.id)).status === 'offline', {
      what: 'offline without proxy',
    });
  });
});
