import {
  type ControlPlane,
  cleanupAll,
  type S3Server,
  startAgent,
  startS3,
  waitFor,
} from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Backup,
  committedInBucket,
  s3Profile,
  smallPgTarget,
  waitTargetSettled,
} from './backup-support.js';
import { controlPlane, getAgent } from './support.js';

type Schedule = { id: string; nextRun: string | null; enabled: boolean };
type CatalogueBackup = Backup & {
  scheduleId: string | null;
  runWhileDisconnected: boolean;
  startedAt: string;
  targetId: string;
};

let cp: ControlPlane;
let s3: S3Server;
let agent: Awaited<ReturnType<typeof startAgent>>;
let storageId: string;
let targetId: string;

beforeAll(async () => {
  cp = await controlPlane({ heartbeatIntervalMs: 500 });
  s3 = await startS3();
  agent = await startAgent(cp);
  await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
  storageId = await s3Profile(cp, s3, 'sched');
  targetId = await smallPgTarget(cp, agent.id, storageId, 'scheduled');
}, 120_000);
afterAll(cleanupAll);

async function catalogue(): Promise<CatalogueBackup[]> {
  return (await cp.api<{ items: CatalogueBackup[] }>('GET', `/api/v1/backups?target=${targetId}`)).body.items;
}

const bucketBackups = () => committedInBucket(s3);

describe('schedules run on the agent’s own clock', () => {
  it('keeps backing up while the control plane is down (16 s); every run is reported once, in order, marked as disconnected', async () => {
    const r = await cp.api<Schedule>('POST', `/api/v1/targets/${targetId}/schedules`, {
      cron: '*/2 * * * * *',
      timezone: 'UTC',
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.nextRun).not.toBeNull();
    // The agent got the schedule and ran it while connected.
    await waitFor(async () => (await catalogue()).length >= 1, {
      timeoutMs: 30_000,
      what: 'a first scheduled backup',
    });

    await cp.stop();
    // At least five runs of a two-second schedule while the control plane is away (eight
    // ticks, so that a slow run that makes the next tick skip does not fail the test).
    await new Promise((res) => setTimeout(res, 16_000));
    await cp.restart();
    await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', {
      timeoutMs: 30_000,
      what: 'back online',
    });

    // Stop the clock, then let everything queued finish and reach the catalogue.
    const off = await cp.api<Schedule>('PATCH', `/api/v1/targets/${targetId}/schedules/${r.body.id}`, {
      enabled: false,
    });
    expect(off.status).toBe(200);
    await waitTargetSettled(cp, targetId);

    const all = await catalogue();
    const offline = all.filter((b) => b.runWhileDisconnected);
    expect(
      offline.length,
      JSON.stringify(all.map((b) => [b.startedAt, b.runWhileDisconnected])),
    ).toBeGreaterThanOrEqual(5);
    expect(all.every((b) => b.scheduleId === r.body.id)).toBe(true);
    // Exactly once: distinct ids and object keys; in order: start times increase with the catalogue's order.
    expect(new Set(all.map((b) => b.id)).size).toBe(all.length);
    expect(new Set(all.map((b) => b.objectKey)).size).toBe(all.length);
    const times = all.map((b) => new Date(b.startedAt).getTime()).sort((a, b) => a - b);
    for (let i = 1; i < times.length; i++) expect(times[i]).toBeGreaterThan(times[i - 1]!);
    // The bucket holds exactly the backups the catalogue lists.
    expect(bucketBackups()).toEqual(all.map((b) => b.objectKey).sort());
  }, 180_000);
});

describe('bad schedules are refused with a problem and change nothing', () => {
  const cases: [string, Record<string, unknown>, number, RegExp][] = [
    ['an invalid cron expression', { cron: 'every day at noon' }, 400, /cron:/],
    ['a cron with a field out of range', { cron: '0 25 * * *' }, 400, /cron:/],
    ['an unknown time zone', { cron: '0 3 * * *', timezone: 'Mars/Olympus_Mons' }, 400, /timezone:/],
    ['an unknown field', { cron: '0 3 * * *', every: 'day' }, 422, /every/],
    [
      'a storage profile that does not exist',
      { cron: '0 3 * * *', storageId: '00000000-0000-4000-8000-000000000000' },
      422,
      /storageId/,
    ],
  ];
  for (const [what, body, status, re] of cases) {
    it(what, async () => {
      const before = (await cp.api<{ items: unknown[] }>('GET', `/api/v1/targets/${targetId}/schedules`)).body
        .items.length;
      const r = await cp.api<{ detail: string }>('POST', `/api/v1/targets/${targetId}/schedules`, body);
      expect(r.status, JSON.stringify(r.body)).toBe(status);
      expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(JSON.stringify(r.body)).toMatch(re);
      const after = (await cp.api<{ items: unknown[] }>('GET', `/api/v1/targets/${targetId}/schedules`)).body
        .items.length;
      expect(after).toBe(before);
    });
  }

  it('two enabled schedules of one target firing within minutes of each other: 409, unless the clash is allowed', async () => {
    const a = await cp.api<Schedule>('POST', `/api/v1/targets/${targetId}/schedules`, {
      cron: '0 3 * * *',
      timezone: 'UTC',
    });
    expect(a.status).toBe(201);
    const b = await cp.api<{ detail: string; type: string }>(
      'POST',
      `/api/v1/targets/${targetId}/schedules`,
      {
        cron: '2 3 * * *',
        timezone: 'UTC',
      },
    );
    expect(b.status).toBe(409);
    expect(b.body.type).toMatch(/schedule-clash/);
    expect(b.body.detail).toMatch(/within 5 minutes/);
    // The same wall-clock hour in another zone does not clash.
    const c = await cp.api<Schedule>('POST', `/api/v1/targets/${targetId}/schedules`, {
      cron: '2 3 * * *',
      timezone: 'Asia/Tokyo',
    });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    const d = await cp.api<Schedule>('POST', `/api/v1/targets/${targetId}/schedules`, {
      cron: '2 3 * * *',
      timezone: 'UTC',
      allowClash: true,
    });
    expect(d.status).toBe(201);
  });
});

describe('kill -9 during an outbox replay', () => {
  it('after restart every backup run while the control plane was away is in the catalogue exactly once, and the bucket matches', async () => {
    // A second agent and target of its own, with the crash point armed.
    const crashy = await startAgent(cp, { env: { DBBACKUP_TEST_CRASH_POINT: 'during-replay' } });
    await waitFor(async () => (await getAgent(cp, crashy.id)).status === 'online', { what: 'online' });
    const replayedId = await smallPgTarget(cp, crashy.id, storageId, 'replayed', 50);
    const mine = async () =>
      (await cp.api<{ items: CatalogueBackup[] }>('GET', `/api/v1/backups?target=${replayedId}`)).body.items;
    const sch = await cp.api<Schedule>('POST', `/api/v1/targets/${replayedId}/schedules`, {
      cron: '*/2 * * * * *',
    });
    expect(sch.status).toBe(201);
    await waitFor(async () => (await mine()).length >= 1, { timeoutMs: 30_000, what: 'a first backup' });

    await cp.stop();
    await new Promise((res) => setTimeout(res, 11_000));
    await cp.restart();
    // The agent reconnects, starts replaying its backlog, and kills itself part-way.
    const exit = await crashy.proc.exited;
    expect(exit.signal).toBe('SIGKILL');
    crashy.restart({});
    await waitFor(async () => (await getAgent(cp, crashy.id)).status === 'online', {
      timeoutMs: 30_000,
      what: 'back online',
    });
    const off = await cp.api('PATCH', `/api/v1/targets/${replayedId}/schedules/${sch.body.id}`, {
      enabled: false,
    });
    expect(off.status).toBe(200);

    await waitTargetSettled(cp, replayedId);
    const all = await mine();
    expect(all.filter((b) => b.runWhileDisconnected).length).toBeGreaterThanOrEqual(3);
    expect(new Set(all.map((b) => b.id)).size).toBe(all.length);
    const jobs = (
      await cp.api<{ items: { id: string; backupId: string; state: string }[] }>(
        'GET',
        `/api/v1/jobs?target=${replayedId}`,
      )
    ).body.items;
    expect(new Set(jobs.map((j) => j.id)).size).toBe(jobs.length);
    // Every committed backup of this target in the bucket is in the catalogue, and nothing else is.
    const prefix = all[0]!.objectKey.split('/').slice(0, -3).join('/');
    expect(bucketBackups().filter((k) => k.startsWith(`${prefix}/`))).toEqual(
      all.map((b) => b.objectKey).sort(),
    );
  }, 180_000);
});
