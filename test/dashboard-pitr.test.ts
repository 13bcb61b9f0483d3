import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type ControlPlane,
  cleanupAll,
  freePort,
  onCleanup,
  type PgServer,
  postgresBinDir,
  query,
  startAgent,
  startPostgres,
  startS3,
  trackDir,
  waitFor,
} from '@dbbackup/testkit';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstSegmentOf, jobLogs, runBackup, s3Profile } from './backup-support.js';
import {
  accessibilityProblems,
  launchChromium,
  logInToOverview,
  newPage,
  PASSWORD,
  shot,
} from './browser-support.js';
import { controlPlane, getAgent } from './support.js';

/**
 * The point-in-time picker on a physical target's page, in Debian's Chromium: the recovery
 * window as the API gives it, and a restore to a time typed in the browser's own time zone
 * that lands between two markers.
 */

let cp: ControlPlane;
let browser: Browser;
let pg: PgServer;
let agent: Awaited<ReturnType<typeof startAgent>>;
let work: string;
let targetId: string;
const isRoot = process.getuid?.() === 0;

beforeAll(async () => {
  cp = await controlPlane();
  expect(
    (await cp.api('POST', '/api/v1/users', { username: 'ada', password: PASSWORD, role: 'operator' })).status,
  ).toBe(201);
  const [s3, server] = await Promise.all([startS3(), startPostgres()]);
  pg = server;
  work = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-dash-pitr-')));
  if (isRoot) execFileSync('chown', ['postgres', work]);
  agent = await startAgent(cp, { env: { DBBACKUP_RESTORE_DIRS: work } });
  await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'agent online' });
  const storageId = await s3Profile(cp, s3, 'dash-pitr');
  const t = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agent.id}/targets`, {
    engine: 'postgresql',
    name: 'cluster',
    connection: { host: '127.0.0.1', port: pg.port, database: 'postgres', user: 'postgres' },
    storageId,
    options: { physical: true, walSwitchSeconds: 5 },
  });
  expect(t.status, JSON.stringify(t.body)).toBe(201);
  targetId = t.body.id;
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await cleanupAll();
});

describe('point-in-time recovery from the dashboard', () => {
  it('the picker shows the recovery window and restores to a time between two markers', async () => {
    const { job, backup } = await runBackup(cp, targetId);
    expect(job.state, await jobLogs(cp, job.id)).toBe('succeeded');
    await query(pg.url(), 'CREATE TABLE marker (n int PRIMARY KEY)');
    await query(pg.url(), 'INSERT INTO marker VALUES (1)');
    await new Promise((r) => setTimeout(r, 2500));
    const t1 = (await query<{ t: Date }>(pg.url(), 'SELECT clock_timestamp() AS t'))[0]!.t;
    await new Promise((r) => setTimeout(r, 2500));
    await query(pg.url(), 'INSERT INTO marker VALUES (2)');
    const t2 = new Date();
    await waitFor(
      async () => {
        const w = (
          await cp.api<{ latest: string | null }>('GET', `/api/v1/targets/${targetId}/recovery-window`)
        ).body;
        return w.latest && new Date(w.latest) > t2 ? w : undefined;
      },
      { timeoutMs: 60_000, what: 'WAL past marker 2 archived' },
    );

    const { context, page, problems } = await newPage(browser);
    await logInToOverview(cp, page, 'ada');
    await page.goto(`${cp.url}/databases/${targetId}`);
    const window = page.getByTestId('recovery-window');
    await expect
      .poll(() => window.textContent(), { timeout: 15_000 })
      .toMatch(/^Restorable from .* WAL files archived/);
    // The retention card names the WAL a policy would remove with old base backups: what is
    // older than the first segment of the oldest base backup left (here, the only one).
    const first = firstSegmentOf((backup!.meta as { engineMeta: Record<string, string> }).engineMeta);
    await expect
      .poll(() => page.getByTestId('retention-wal').textContent(), { timeout: 15_000 })
      .toContain(`older than ${first},`);
    const form = page.getByRole('form', { name: 'Restore to a point in time' });
    await form.getByLabel('A time').check();
    // The time as this browser shows it, to the second (datetime-local is local time).
    const local = (await page.evaluate(`(() => {
      const d = new Date(${JSON.stringify(t1.toISOString())});
      const p = (n) => String(n).padStart(2, '0');
      return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + 'T' + p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());
    })()`)) as string;
    await form.getByLabel(/^Time/).fill(local);
    const into = path.join(work, 'at-t1');
    const port = await freePort();
    onCleanup(async () => {
      if (!existsSync(path.join(into, 'postmaster.pid'))) return;
      const ctl = [path.join(postgresBinDir(), 'pg_ctl'), '-D', into, '-m', 'immediate', '-w', 'stop'];
      try {
        execFileSync(isRoot ? 'runuser' : ctl[0]!, isRoot ? ['-u', 'postgres', '--', ...ctl] : ctl.slice(1));
      } catch {}
    });
    await form.getByLabel(/^New data directory/).fill(into);
    await form.getByLabel(/^Port/).fill(String(port));
    expect(
      await form
        .getByText(
          `--data-dir ${into} --to-time ${new Date(Math.floor(t1.getTime() / 1000) * 1000).toISOString()}`,
        )
        .count(),
    ).toBe(1);
    expect(await accessibilityProblems(page)).toEqual([]);
    await shot(page, 'database-point-in-time');
    await form.getByRole('button', { name: 'Restore to this point' }).click();
    await page.waitForURL(/\/jobs\//);
    await expect
      .poll(() => page.getByTestId('job-state').textContent(), { timeout: 240_000 })
      .toMatch(/^(succeeded|failed)/);
    const jobId = page.url().split('/').pop()!;
    expect(await page.getByTestId('job-state').textContent(), await jobLogs(cp, jobId)).toBe('succeeded');
    const rows = await query<{ n: number }>(
      `postgres://postgres@127.0.0.1:${port}/postgres`,
      'SELECT n FROM marker',
    );
    expect(rows.map((r) => r.n)).toEqual([1]);
    expect(problems).toEqual([]);
    await context.close();
  }, 400_000);
});
