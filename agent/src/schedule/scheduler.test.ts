import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '@dbbackup/logger';
import type { AgentConfig } from '@dbbackup/proto';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentStore } from '../store/agent-store.js';
import { Scheduler, zoneOptions } from './scheduler.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const config = (cron: string): AgentConfig => ({
  version: 3,
  naming: { env: 'test', agentName: 'host' },
  kek: { kid: 'k', publicJwk: { kty: 'OKP', crv: 'X25519', x: 'x' } },
  targets: [
    {
      target: {
        id: '11111111-1111-4111-8111-111111111111',
        engine: 'postgresql',
        name: 'db',
        connection: { database: 'db' },
        secretRef: { kind: 'none' },
        options: { compression: 'zstd' },
      },
      schedules: [
        {
          id: '22222222-2222-4222-8222-222222222222',
          cron,
          timezone: 'UTC',
          enabled: true,
          storage: {
            kind: 'local',
            id: '33333333-3333-4333-8333-333333333333',
            directory: '/tmp/x',
            prefix: '',
          },
        },
      ],
    },
  ],
});

async function setup(cron: string, lastFireAgoMs: number | undefined, graceMs: number) {
  const dir = mkdtempSync(path.join(tmpdir(), 'dbb-sched-'));
  dirs.push(dir);
  const store = await AgentStore.open(dir);
  await store.setMeta('config', JSON.stringify(config(cron)));
  if (lastFireAgoMs !== undefined)
    await store.setMeta(
      'sched_last:22222222-2222-4222-8222-222222222222',
      new Date(Date.now() - lastFireAgoMs).toISOString(),
    );
  const s = new Scheduler({
    store,
    log: createLogger({ name: 'test', level: 'silent' }),
    isConnected: () => false,
    wake: () => {},
    graceMs,
  });
  await s.start();
  s.stop();
  const queued = await store.db.selectFrom('inbox').selectAll().where('origin', '=', 'schedule').execute();
  await store.close();
  return queued;
}

describe('a schedule missed while the agent was down', () => {
  it('runs once at start, not once per missed tick, when within the grace window', async () => {
    // Every minute, last fired ten minutes ago: ten ticks were missed.
    const queued = await setup('* * * * *', 10 * 60_000, 3_600_000);
    expect(queued).toHaveLength(1);
    const p = JSON.parse(queued[0]!.payload);
    expect(p.catchUp).toBe(true);
    expect(p.disconnected).toBe(true);
  });

  it('runs once if the most recent missed tick is within the grace window, not if it is older', async () => {
    // A daily schedule whose time of day was 90 minutes ago; the agent was down for three hours.
    const t = new Date(Date.now() - 90 * 60_000);
    const daily = `${t.getUTCMinutes()} ${t.getUTCHours()} * * *`;
    expect(await setup(daily, 3 * 3_600_000, 60 * 60_000)).toHaveLength(0);
    expect(await setup(daily, 3 * 3_600_000, 2 * 3_600_000)).toHaveLength(1);
  });

  it('does not run a schedule that never fired before (a new schedule waits for its first tick)', async () => {
    expect(await setup('* * * * *', undefined, 3_600_000)).toHaveLength(0);
  });
});

describe('zoneOptions', () => {
  it('runs UTC schedules on a fixed zero offset, at the same instants croner computes for the UTC zone', async () => {
    const { Cron } = await import('croner');
    for (const tz of ['UTC', 'Etc/UTC', 'GMT', 'etc/gmt+0'])
      expect(zoneOptions(tz)).toEqual({ utcOffset: 0 });
    for (const cron of ['0 3 * * *', '*/7 * * * *', '30 1 1 * *', '0 0 * * 0']) {
      const fixed = new Cron(cron, { ...zoneOptions('UTC'), paused: true });
      const named = new Cron(cron, { timezone: 'UTC', paused: true });
      for (const from of ['2026-03-29T00:30:00Z', '2026-10-25T00:59:00Z', '2026-12-31T23:59:30Z'])
        expect(fixed.nextRuns(5, new Date(from)).map((d) => d.toISOString())).toEqual(
          named.nextRuns(5, new Date(from)).map((d) => d.toISOString()),
        );
    }
  });

  it('keeps named zones (with their daylight-saving changes) as zones', async () => {
    const { Cron } = await import('croner');
    expect(zoneOptions('Europe/Berlin')).toEqual({ timezone: 'Europe/Berlin' });
    expect(zoneOptions('America/New_York')).toEqual({ timezone: 'America/New_York' });
    // 03:00 in Berlin is 01:00Z in summer and 02:00Z in winter.
    const c = new Cron('0 3 * * *', { ...zoneOptions('Europe/Berlin'), paused: true });
    expect(c.nextRun(new Date('2026-07-01T12:00:00Z'))?.toISOString()).toBe('2026-07-02T01:00:00.000Z');
    expect(c.nextRun(new Date('2026-12-01T12:00:00Z'))?.toISOString()).toBe('2026-12-02T02:00:00.000Z');
  });
});
