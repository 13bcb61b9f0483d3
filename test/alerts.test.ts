import { type ControlPlane, cleanupAll, query, startAgent, waitFor } from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, dbUrl, pgPort, smallPgTarget } from './backup-support.js';
import { controlPlane, getAgent, missedSinceLastGood } from './support.js';

type Alert = {
  id: string;
  kind: string;
  state: string;
  targetId: string;
  message: string;
  resolvedAt: string | null;
  details: { lastGoodBackupAt: string | null };
};

let cp: ControlPlane;
let agent: Awaited<ReturnType<typeof startAgent>>;
let targetId: string;

beforeAll(async () => {
  // A grace of 10 s against a run every 4 s: a backup that lands a little late on a loaded
  // machine is not missed, while the agent killed below is.
  cp = await controlPlane({ heartbeatIntervalMs: 500, env: { DBBACKUP_MISSED_BACKUP_GRACE_MS: '10000' } });
  agent = await startAgent(cp);
  await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
  const s = await cp.api<{ id: string }>('POST', '/api/v1/storage', {
    kind: 'local',
    name: 'disk',
    directory: `${agent.stateDir}/backups`,
  });
  targetId = await smallPgTarget(cp, agent.id, s.body.id, 'watched', 1);
}, 120_000);
afterAll(cleanupAll);

const alerts = async (q = '') =>
  (await cp.api<{ items: Alert[] }>('GET', `/api/v1/alerts?target=${targetId}${q}`)).body.items;

describe('missed backups', () => {
  it('the agent away past an expected run fires backup_missed; a good backup resolves it; the target shows its RPO', async () => {
    const sch = await cp.api<{ id: string }>('POST', `/api/v1/targets/${targetId}/schedules`, {
      cron: '*/4 * * * * *',
    });
    expect(sch.status).toBe(201);
    await waitFor(
      async () =>
        ((await cp.api<{ rpoSeconds: number | null }>('GET', `/api/v1/targets/${targetId}/health`)).body
          .rpoSeconds ?? -1) >= 0,
      {
        timeoutMs: 30_000,
        what: 'a first scheduled backup',
      },
    );
    // Nothing fires while backups land on time. (The agent learns of a new schedule at its next
    // sync: an alert fired before its first run landed is resolved by the next sweep.)
    await waitFor(async () => (await alerts('&state=firing')).length === 0, {
      timeoutMs: 30_000,
      what: 'no alert firing while backups land',
    });

    await agent.proc.kill('SIGKILL');
    await waitFor(async () => (await getAgent(cp, agent.id)).status === 'offline', { what: 'offline' });
    // The alert about the dead agent: one that fired while a backup was still being written may
    // resolve when that backup lands.
    const firing = await missedSinceLastGood<Alert>(cp, targetId);
    expect(firing.message).toMatch(/no good backup of watched since .*; one was expected at/);
    const health = (
      await cp.api<{ rpoSeconds: number; nextExpectedRun: string; firingAlerts: unknown[] }>(
        'GET',
        `/api/v1/targets/${targetId}/health`,
      )
    ).body;
    expect(health.rpoSeconds).toBeGreaterThanOrEqual(4);
    expect(new Date(health.nextExpectedRun).getTime()).toBeLessThan(Date.now());
    expect(health.firingAlerts).toHaveLength(1);
    // The fleet's aggregate counts it (one query, not the client counting lists).
    const summary = await cp.api<{ total: number; overdue: number; failing: number; neverBackedUp: number }>(
      'GET',
      '/api/v1/targets/summary',
    );
    expect(summary.body).toMatchObject({ overdue: 1, neverBackedUp: 0 });
    expect(summary.body.total).toBeGreaterThanOrEqual(1);

    agent.restart();
    await waitFor(async () => (await alerts('&kind=backup_missed')).every((a) => a.state === 'resolved'), {
      timeoutMs: 60_000,
      what: 'backup_missed to resolve',
    });
    const all = await alerts('&kind=backup_missed');
    expect(all.map((a) => a.id)).toContain(firing.id);
    expect((await cp.api<{ overdue: number }>('GET', '/api/v1/targets/summary')).body.overdue).toBe(0);
    expect(all.every((a) => a.resolvedAt !== null)).toBe(true);
    await cp.api('DELETE', `/api/v1/targets/${targetId}/schedules/${sch.body.id}`);
  }, 120_000);

  it('bad alert filters are a 400 problem', async () => {
    const r = await cp.api<{ detail: string }>('GET', '/api/v1/alerts?state=burning');
    expect(r.status).toBe(400);
    expect(r.body.detail).toMatch(/state/);
  });
});

describe('stalled jobs', () => {
  it('a running backup whose agent goes offline is marked stalled with an alert; when the agent comes back and finishes it, the job is reconciled, once', async () => {
    const db = await createDb();
    await query(
      dbUrl(db),
      'CREATE TABLE big AS SELECT g AS id, md5(g::text) AS pad FROM generate_series(1, 200000) g;',
    );
    const storages = (await cp.api<{ items: { id: string }[] }>('GET', '/api/v1/storage')).body.items;
    const t = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agent.id}/targets`, {
      engine: 'postgresql',
      name: 'stalling',
      connection: { host: '127.0.0.1', port: pgPort(), database: db, user: 'postgres' },
      storageId: storages[0]!.id,
    });
    expect(t.status).toBe(201);
    const job = (await cp.api<{ id: string }>('POST', `/api/v1/targets/${t.body.id}/backups`)).body;
    const state = async () => (await cp.api<{ state: string }>('GET', `/api/v1/jobs/${job.id}`)).body.state;
    await waitFor(async () => (await state()) === 'running', { timeoutMs: 30_000, what: 'job running' });
    agent.proc.child.kill('SIGSTOP');
    try {
      await waitFor(async () => (await state()) === 'stalled', { timeoutMs: 30_000, what: 'job stalled' });
      const firing = (
        await cp.api<{ items: Alert[] }>(
          'GET',
          `/api/v1/alerts?kind=job_stalled&state=firing&target=${t.body.id}`,
        )
      ).body.items;
      expect(firing).toHaveLength(1);
      expect(firing[0]!.message).toMatch(/its agent went offline/);
    } finally {
      agent.proc.child.kill('SIGCONT');
    }
    await waitFor(async () => (await state()) === 'succeeded', { timeoutMs: 60_000, what: 'job reconciled' });
    await waitFor(
      async () =>
        (
          await cp.api<{ items: Alert[] }>('GET', `/api/v1/alerts?kind=job_stalled&target=${t.body.id}`)
        ).body.items.every((a) => a.state === 'resolved'),
      { timeoutMs: 30_000, what: 'job_stalled resolved' },
    );
    const backups = (await cp.api<{ items: unknown[] }>('GET', `/api/v1/backups?target=${t.body.id}`)).body
      .items;
    expect(backups).toHaveLength(1);
  }, 150_000);
});
