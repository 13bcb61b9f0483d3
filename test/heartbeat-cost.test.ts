import {
  type Adversary,
  type ControlPlane,
  cleanupAll,
  enrolAdversary,
  query,
  waitFor,
} from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlane, getAgent } from './support.js';

// Many agents sending unchanged heartbeats: the database sees batches, not one write per heartbeat.
const AGENTS = 40;
let cp: ControlPlane;
let agents: Adversary[];
/** Agents whose heartbeats the background loop leaves out. */
const silent = new Set<string>();
let sent = 0;
let beating: NodeJS.Timeout | undefined;

const facts = (tools: string[] = []) => ({
  hostname: 'fleet-host',
  os: 'linux',
  arch: 'x64',
  agentVersion: 'adversary',
  uptimeSeconds: process.uptime(),
  hostUptimeSeconds: 1000 + process.uptime(),
  load: [Math.random(), 0.5, 0.25],
  stateDirFreeBytes: 1_000_000,
  tools: tools.map((name) => ({ name, path: `/usr/bin/${name}`, version: '1' })),
  queueDepth: 0,
  outboxDepth: 0,
});

/** Transactions committed in the control plane's database so far (its backends report at least every second). */
async function commits(): Promise<number> {
  await new Promise((r) => setTimeout(r, 2500));
  const r = await query<{ n: string }>(
    cp.databaseUrl,
    'SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()',
  );
  return Number(r[0]?.n);
}

beforeAll(async () => {
  // A long heartbeat interval and quiet workers: what the database sees in the window is the heartbeats'
  // own cost and the batches (a sweep every 5 s, a liveness batch every second).
  cp = await controlPlane({
    heartbeatIntervalMs: 10_000,
    env: { DBBACKUP_KEY_ROTATION_INTERVAL_MS: '600000', DBBACKUP_NOTIFY_INTERVAL_MS: '60000' },
  });
  agents = await Promise.all(Array.from({ length: AGENTS }, (_, i) => enrolAdversary(cp, `fleet-${i}`)));
  // Every connected agent beats every 300 ms (far more often than the control plane asks), unless silenced;
  // the loop runs while the others connect, so none waits long enough to be marked offline.
  const connected = new Set<Adversary>();
  beating = setInterval(() => {
    for (const a of connected)
      if (!silent.has(a.agentId)) {
        a.send('heartbeat', { facts: facts() });
        sent++;
      }
  }, 300);
  for (const a of agents) {
    await a.connect();
    a.send('heartbeat', { facts: facts() });
    connected.add(a);
  }
  await waitFor(
    async () => {
      for (const a of agents) if ((await getAgent(cp, a.agentId)).status !== 'online') return undefined;
      return true;
    },
    { what: 'all online' },
  );
  // A backend that went idle reports its statistics within 10 s: the enrolments' must not
  // land in the measured window.
  await new Promise((r) => setTimeout(r, 11_000));
}, 120_000);
afterAll(async () => {
  clearInterval(beating);
  await cleanupAll();
});

describe('heartbeats at scale', () => {
  it('cost the database next to nothing when nothing changed, and record no status change', async () => {
    const before = await commits();
    const sentBefore = sent;
    await new Promise((r) => setTimeout(r, 3000));
    const after = await commits();
    const heartbeats = sent - sentBefore;
    console.log(`heartbeat-cost: ${after - before} commits for ${heartbeats} heartbeats`);
    expect(heartbeats).toBeGreaterThan(500);
    // One write and one status check per heartbeat (the old way) is two commits a heartbeat, plus the
    // sweeper's; batched, the sweeper's and the batches' are what is left.
    expect(after - before, `${after - before} commits for ${heartbeats} heartbeats`).toBeLessThan(
      heartbeats / 4,
    );
    for (const a of agents) {
      expect(a.inbox.filter((m) => m.type === 'heartbeat.ack').length).toBeGreaterThan(10);
      const history = await query<{ status: string }>(
        cp.databaseUrl,
        'SELECT status FROM agent_status_history WHERE agent_id = $1 ORDER BY id',
        [a.agentId],
      );
      expect(history.map((h) => h.status)).toEqual(['pending', 'online']);
    }
    // Seen: last_seen_at moved with the batches.
    const seen = await query<{ age: number }>(
      cp.databaseUrl,
      'SELECT max(extract(epoch FROM now() - last_seen_at))::float AS age FROM agents',
    );
    expect(Number(seen[0]?.age)).toBeLessThan(5);
  });

  it('writes facts that changed at once', async () => {
    const a = agents[0] as Adversary;
    silent.add(a.agentId);
    a.send('heartbeat', { facts: facts(['pg_dump']) });
    await waitFor(
      async () => {
        const v = (await getAgent(cp, a.agentId)) as { facts?: { tools?: { name: string }[] } };
        return v.facts?.tools?.[0]?.name === 'pg_dump' || undefined;
      },
      { what: 'the new facts' },
    );
    silent.delete(a.agentId);
  });

  it('an agent the sweeper marked offline is online again with its next heartbeat, recorded once', async () => {
    const a = agents[1] as Adversary;
    silent.add(a.agentId);
    // Its last heartbeat long ago (the batches that carried it have been written by now).
    await new Promise((r) => setTimeout(r, 1500));
    await query(
      cp.databaseUrl,
      "UPDATE agents SET last_seen_at = now() - interval '1 minute' WHERE id = $1",
      [a.agentId],
    );
    await waitFor(async () => (await getAgent(cp, a.agentId)).status === 'offline' || undefined, {
      timeoutMs: 15_000,
      what: 'offline at the next sweep',
    });
    silent.delete(a.agentId);
    await waitFor(async () => (await getAgent(cp, a.agentId)).status === 'online' || undefined, {
      what: 'online again',
    });
    const history = await query<{ status: string; reason: string }>(
      cp.databaseUrl,
      'SELECT status, reason FROM agent_status_history WHERE agent_id = $1 ORDER BY id',
      [a.agentId],
    );
    expect(history.map((h) => `${h.status}:${h.reason}`)).toEqual([
      'pending:enrolled',
      'online:connected',
      'offline:no heartbeat',
      'online:heartbeat resumed',
    ]);
  });
});
