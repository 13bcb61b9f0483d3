import { type ControlPlane, cleanupAll, startAgent, waitFor } from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CommandView, controlPlane, getAgent, getCommand, startedCount } from './support.js';

let cp: ControlPlane;
beforeAll(async () => {
  cp = await controlPlane();
});
afterAll(cleanupAll);

const online = (id: string) =>
  waitFor(async () => (await getAgent(cp, id)).status === 'online', { timeoutMs: 15_000, what: 'online' });

async function send(agentId: string, command: Record<string, unknown>) {
  const r = await cp.api<CommandView>('POST', `/api/v1/agents/${agentId}/commands`, { command });
  expect(r.status).toBe(202);
  return r.body.id;
}

const finished = (id: string) =>
  waitFor(
    async () => {
      const c = await getCommand(cp, id);
      return ['succeeded', 'failed', 'expired', 'cancelled'].includes(c.state) ? c : undefined;
    },
    { timeoutMs: 20_000, what: `command ${id} finished` },
  ).then((r) => r.value);

describe('commands', () => {
  it('run once and report their result', async () => {
    const agent = await startAgent(cp);
    await online(agent.id);
    const id = await send(agent.id, { kind: 'ping', echo: 'hello' });
    const c = await finished(id);
    expect(c.state).toBe('succeeded');
    expect(c.result).toMatchObject({ echo: 'hello' });
    expect(await startedCount(cp, id)).toBe(1);
  });

  it('probe reports dump tools and reachable local database servers', async () => {
    const agent = await startAgent(cp);
    await online(agent.id);
    const c = await finished(await send(agent.id, { kind: 'probe' }));
    expect(c.state).toBe('succeeded');
    const result = c.result as { tools: { name: string }[]; servers: { engine: string }[] };
    expect(result.tools.map((t) => t.name)).toContain('pg_dump');
    // The shared test cluster listens on 127.0.0.1 on another port; the probe looks at the usual ones only.
    expect(Array.isArray(result.servers)).toBe(true);
  });

  it('after a control-plane restart the agent reconnects by itself; a command made while it was away runs exactly once', async () => {
    const agent = await startAgent(cp);
    await online(agent.id);
    // Freeze the agent so it stays away while the control plane restarts.
    agent.proc.child.kill('SIGSTOP');
    try {
      await cp.stop('SIGTERM');
      await cp.restart();
      // A restart marks nobody offline; the new process's sweeper does, once the frozen agent
      // has been silent for a staleness window counted from the process's start.
      await waitFor(async () => (await getAgent(cp, agent.id)).status === 'offline', { what: 'offline' });
      const id = await send(agent.id, { kind: 'ping', echo: 'while-away' });
      expect((await getCommand(cp, id)).state).toBe('queued');
      agent.proc.child.kill('SIGCONT');
      await online(agent.id);
      const c = await finished(id);
      expect(c.state).toBe('succeeded');
      expect(await startedCount(cp, id)).toBe(1);
    } finally {
      agent.proc.child.kill('SIGCONT');
    }
  });

  it('kill -9 between recording a command and acknowledging it: redelivered, runs once', async () => {
    const agent = await startAgent(cp, { env: { DBBACKUP_TEST_CRASH_POINT: 'after-record' } });
    await online(agent.id);
    const id = await send(agent.id, { kind: 'ping' });
    const { signal } = await agent.proc.exited;
    expect(signal).toBe('SIGKILL');
    expect(['queued', 'delivered']).toContain((await getCommand(cp, id)).state);
    agent.restart({});
    const c = await finished(id);
    expect(c.state).toBe('succeeded');
    expect(c.deliveries).toBeGreaterThanOrEqual(2);
    expect(await startedCount(cp, id)).toBe(1);
    expect(agent.proc.lines.some((l) => l.includes('re-acknowledged, not re-run'))).toBe(true);
  });

  it('kill -9 on receipt, before recording: redelivered, runs once', async () => {
    const agent = await startAgent(cp, { env: { DBBACKUP_TEST_CRASH_POINT: 'before-record' } });
    await online(agent.id);
    const id = await send(agent.id, { kind: 'ping' });
    await agent.proc.exited;
    agent.restart({});
    const c = await finished(id);
    expect(c.state).toBe('succeeded');
    expect(await startedCount(cp, id)).toBe(1);
  });

  it('kill -9 while a command runs: reported failed (interrupted) after restart, never run twice', async () => {
    const agent = await startAgent(cp, { env: { DBBACKUP_TEST_CRASH_POINT: 'while-running' } });
    await online(agent.id);
    const id = await send(agent.id, { kind: 'ping' });
    await agent.proc.exited;
    agent.restart({});
    const c = await finished(id);
    expect(c.state).toBe('failed');
    expect(c.error).toMatchObject({ code: 'interrupted' });
    expect(await startedCount(cp, id)).toBe(1);
  });

  it('expire when the agent does not take them within their TTL', async () => {
    const agent = await startAgent(cp);
    await online(agent.id);
    await agent.proc.kill('SIGKILL');
    const r = await cp.api<CommandView>('POST', `/api/v1/agents/${agent.id}/commands`, {
      command: { kind: 'ping' },
      ttlSeconds: 1,
    });
    const c = await finished(r.body.id);
    expect(c.state).toBe('expired');
    // Brought back, the agent is not handed the expired command.
    agent.restart({});
    await online(agent.id);
    await new Promise((res) => setTimeout(res, 500));
    expect(await startedCount(cp, r.body.id)).toBe(0);
  });

  it('kill -9 of the control plane right after a command is created: after restart it still runs exactly once', async () => {
    const agent = await startAgent(cp);
    await online(agent.id);
    const id = await send(agent.id, { kind: 'ping', echo: 'crash' });
    await cp.stop('SIGKILL');
    await cp.restart();
    const c = await finished(id);
    expect(c.state).toBe('succeeded');
    expect(await startedCount(cp, id)).toBe(1);
    const events = await (await import('@dbbackup/testkit')).query<{ n: string }>(
      cp.databaseUrl,
      "SELECT count(*) AS n FROM agent_events WHERE body->>'commandId' = $1",
      [id],
    );
    // started + succeeded, each once, whatever was in flight when the control plane died.
    expect(Number(events[0]?.n)).toBe(2);
  });
});
