import { randomBytes } from 'node:crypto';
import {
  type ControlPlane,
  cleanupAll,
  enrolFleet,
  Fleet,
  fleetApi,
  pool,
  query,
  startControlPlane,
} from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase } from './support.js';

/**
 * A scaled-down fleet (the 10 000-agent figures come from `pnpm bench:fleet`): 500 simulated
 * agents at the protocol level (real enrolments and keys, real sockets, the agent's backoff and
 * Retry-After reading from proto/) against the real control plane, with 2 s heartbeats.
 */
const N = 500;
/** Replicas of one database share its master key. */
const MASTER_KEY = randomBytes(32).toString('base64');
const HB = 2000;
let cp: ControlPlane;
let fleet: Fleet;

type AgentPage = { items: { id: string; status: string }[]; nextCursor: string | null; total: number };

/** Every agent the API lists, walking the cursor in small pages. */
async function listAll(on: ControlPlane) {
  const seen: { id: string; status: string }[] = [];
  let cursor: string | null = null;
  let total = 0;
  do {
    const q: string = `/api/v1/agents?limit=37${cursor ? `&cursor=${cursor}` : ''}`;
    const page: AgentPage = await fleetApi<AgentPage>(on.url, on.adminToken, 'GET', q);
    seen.push(...page.items);
    total = page.total;
    cursor = page.nextCursor;
  } while (cursor);
  return { seen, total };
}

/** Status-history rows written since `since`, as "status (reason)" → count. */
async function historySince(since: Date) {
  const rows = await query<{ k: string; n: number }>(
    cp.databaseUrl,
    `SELECT status || ' (' || reason || ')' AS k, count(*)::int AS n FROM agent_status_history WHERE at >= $1 GROUP BY 1`,
    [since],
  );
  return Object.fromEntries(rows.map((r) => [r.k, r.n]));
}

async function restartWith(signal: NodeJS.Signals) {
  const since = new Date();
  const t = Date.now();
  await cp.stop(signal);
  const exit = await cp.proc.exited;
  const shutdownMs = Date.now() - t;
  await cp.restart();
  const up = Date.now();
  await fleet.untilReady(N, 90_000);
  return { exit, shutdownMs, backMs: Date.now() - up, since };
}

beforeAll(async () => {
  cp = await startControlPlane({
    databaseUrl: await freshDatabase(),
    heartbeatIntervalMs: HB,
    env: {
      DBBACKUP_LOG_LEVEL: 'info',
      DBBACKUP_RECONNECT_GRACE_MS: '60000',
      DBBACKUP_MASTER_KEY: MASTER_KEY,
    },
  });
  fleet = new Fleet(await enrolFleet(cp.url, cp.adminToken, N, 16), () => [cp.url]);
  fleet.start(2000);
  await fleet.untilReady(N, 90_000);
}, 180_000);

afterAll(async () => {
  fleet?.stop();
  await cleanupAll();
});

describe(`a fleet of ${N} agents`, () => {
  it('all are online, and the paged listing returns every agent exactly once', async () => {
    const { seen, total } = await listAll(cp);
    expect(total).toBe(N);
    expect(seen).toHaveLength(N);
    expect(new Set(seen.map((a) => a.id)).size).toBe(N);
    expect(new Set(fleet.agents.map((a) => a.id.agentId))).toEqual(new Set(seen.map((a) => a.id)));
    expect(seen.filter((a) => a.status !== 'online')).toEqual([]);
    const summary = await fleetApi(cp.url, cp.adminToken, 'GET', '/api/v1/agents/summary');
    expect(summary).toEqual({ total: N, online: N, offline: 0, pending: 0, revoked: 0 });
  });

  it('no agent is marked offline, or dropped, while its heartbeats arrive', async () => {
    const since = new Date();
    const drops = fleet.rec.drops;
    fleet.rec.heartbeatAcks = [];
    fleet.rec.measuring = true;
    await new Promise((r) => setTimeout(r, 3 * HB + 500));
    fleet.rec.measuring = false;
    // Every agent beat at least twice in three intervals, and each beat was answered.
    expect(fleet.rec.heartbeatAcks.length).toBeGreaterThanOrEqual(2 * N);
    expect(fleet.rec.drops - drops).toBe(0);
    expect(await historySince(since)).toEqual({});
  });

  it('a graceful restart is a non-event: a clean exit, every agent back, no status written', async () => {
    const r = await restartWith('SIGTERM');
    expect(r.exit.code).toBe(0);
    expect(r.shutdownMs).toBeLessThan(10_000);
    expect(r.backMs).toBeLessThan(60_000);
    // Nobody was marked offline by the old process or the new one, so nothing came "back online".
    expect(await historySince(r.since)).toEqual({});
    const { seen } = await listAll(cp);
    expect(seen.filter((a) => a.status !== 'online')).toEqual([]);
  });

  it('after kill -9 the fleet comes back the same way', async () => {
    const r = await restartWith('SIGKILL');
    expect(r.exit.signal).toBe('SIGKILL');
    expect(r.backMs).toBeLessThan(60_000);
    expect(await historySince(r.since)).toEqual({});
    // A command reaches an agent that reconnected, and comes back succeeded.
    const target = fleet.agents[7]?.id.agentId as string;
    const cmd = await fleetApi<{ id: string }>(
      cp.url,
      cp.adminToken,
      'POST',
      `/api/v1/agents/${target}/commands`,
      {
        command: { kind: 'ping', echo: 'after-kill' },
      },
    );
    await fleet.rec.until(() => fleet.rec.succeeded.has(cmd.id), 30_000, 'the ping succeeded');
  });
});

describe('two replicas on one database', () => {
  it('split the fleet by the agents’ choice, and a command made on either replica reaches the agent', async () => {
    const second = await startControlPlane({
      databaseUrl: cp.databaseUrl,
      heartbeatIntervalMs: HB,
      adminToken: cp.adminToken,
      env: {
        DBBACKUP_LOG_LEVEL: 'info',
        DBBACKUP_RECONNECT_GRACE_MS: '60000',
        DBBACKUP_MASTER_KEY: MASTER_KEY,
      },
    });
    const replicas = [cp, second];
    const both = new Fleet(await enrolFleet(cp.url, cp.adminToken, 100, 16), () =>
      replicas.map((r) => r.url),
    );
    try {
      both.start(500);
      await both.untilReady(100, 60_000);
      const onSecond = both.agents.filter((a) => a.url === second.url).length;
      expect(onSecond).toBeGreaterThan(10);
      expect(onSecond).toBeLessThan(90);
      // 40 pings, each made on the replica that does not hold the agent's socket: routed through Postgres.
      const ids = await pool(both.agents.slice(0, 40), 8, async (a) => {
        const via = a.url === cp.url ? second : cp;
        const r = await fleetApi<{ id: string }>(
          via.url,
          via.adminToken,
          'POST',
          `/api/v1/agents/${a.id.agentId}/commands`,
          {
            command: { kind: 'ping' },
          },
        );
        return r.id;
      });
      await both.rec.until(
        () => ids.every((id) => both.rec.succeeded.has(id)),
        30_000,
        'all 40 pings succeeded',
      );
    } finally {
      both.stop();
      await second.stop('SIGTERM');
    }
  });
});
