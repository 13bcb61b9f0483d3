import { type ControlPlane, cleanupAll, startAgent, waitFor } from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlane, getAgent } from './support.js';

const HEARTBEAT_MS = 500;
let cp: ControlPlane;
beforeAll(async () => {
  cp = await controlPlane({ heartbeatIntervalMs: HEARTBEAT_MS });
});
afterAll(cleanupAll);

describe('liveness', () => {
  it('marks a frozen agent (socket open, no heartbeats) offline within two heartbeat intervals', async () => {
    const agent = await startAgent(cp);
    await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
    agent.proc.child.kill('SIGSTOP');
    try {
      const { ms } = await waitFor(async () => (await getAgent(cp, agent.id)).status === 'offline', {
        timeoutMs: 10 * HEARTBEAT_MS,
        intervalMs: 20,
        what: 'offline',
      });
      // Two intervals of silence plus up to one check period and one poll.
      expect(ms).toBeLessThanOrEqual(2 * HEARTBEAT_MS + HEARTBEAT_MS / 4 + HEARTBEAT_MS);
    } finally {
      agent.proc.child.kill('SIGCONT');
    }
    // Thawed, it notices the dropped link and comes back by itself.
    await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'back online' });
  });

  it('marks a kill -9 agent offline within two heartbeat intervals and records the change', async () => {
    const agent = await startAgent(cp);
    await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
    await agent.proc.kill('SIGKILL');
    const { ms } = await waitFor(async () => (await getAgent(cp, agent.id)).status === 'offline', {
      timeoutMs: 10 * HEARTBEAT_MS,
      intervalMs: 20,
      what: 'offline',
    });
    expect(ms).toBeLessThanOrEqual(2 * HEARTBEAT_MS);
    const history = (await getAgent(cp, agent.id)).history ?? [];
    expect(history.map((h) => h.status).slice(0, 3)).toEqual(['offline', 'online', 'pending']);
  });

  it('SIGTERM on the agent flushes and closes with 1001', async () => {
    const agent = await startAgent(cp);
    await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
    const { code } = await agent.proc.kill('SIGTERM');
    expect(code).toBe(0);
    expect(cp.proc.lines.some((l) => l.includes(agent.id) && l.includes('"code":1001'))).toBe(true);
    expect((await getAgent(cp, agent.id)).status).toBe('offline');
  });

  it('the agent notices a silent control plane (half-open link) within two ping intervals and reconnects', async () => {
    const agent = await startAgent(cp);
    await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
    cp.proc.child.kill('SIGSTOP');
    const t0 = Date.now();
    try {
      await agent.proc.waitForLine(/silent for two ping intervals/, 5000);
      // Ping interval is half the heartbeat; two of them, plus one check period of slack.
      expect(Date.now() - t0).toBeLessThanOrEqual(3 * (HEARTBEAT_MS / 2) + 250);
    } finally {
      cp.proc.child.kill('SIGCONT');
    }
    // It reconnects by itself once the control plane answers again.
    await waitFor(
      async () => agent.proc.lines.filter((l) => l.includes('connected to control plane')).length >= 2,
      {
        timeoutMs: 15_000,
        what: 'second connection',
      },
    );
    await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online again' });
  });
});
