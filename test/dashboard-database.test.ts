import { existsSync } from 'node:fs';
import { type ControlPlane, cleanupAll, startAgent, waitFor } from '@dbbackup/testkit';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, fingerprint, pgPort, runBackup, seedDatabase, smallPgTarget } from './backup-support.js';
import {
  accessibilityProblems,
  addUsers,
  forge,
  launchChromium,
  logInToOverview,
  newPage,
  openScreen,
  shot,
} from './browser-support.js';
import { controlPlane, getAgent, missedSinceLastGood } from './support.js';

/**
 * A database's page in Debian's Chromium against a real control plane, agent and
 * PostgreSQL: schedules, retention, the backups table and its actions, a restore into a
 * new database checked like the end-to-end tests, and what a viewer may not do.
 */

let cp: ControlPlane;
let browser: Browser;
let agent: Awaited<ReturnType<typeof startAgent>>;
let storageId: string;
let storeDir: string;
let source: string;
let targetId: string;

type Backup = { id: string; objectKey: string; deletedAt: string | null; deletedReason: string | null };

beforeAll(async () => {
  cp = await controlPlane({ env: { DBBACKUP_MISSED_BACKUP_GRACE_MS: '2000' } });
  await addUsers(cp, [
    ['ada', 'operator'],
    ['bob', 'viewer'],
  ]);
  agent = await startAgent(cp);
  await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
  storeDir = `${agent.stateDir}/backups`;
  const s = await cp.api<{ id: string }>('POST', '/api/v1/storage', {
    kind: 'local',
    name: 'disk',
    directory: storeDir,
  });
  expect(s.status, JSON.stringify(s.body)).toBe(201);
  storageId = s.body.id;
  source = await createDb();
  await seedDatabase(source, 1);
  const t = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agent.id}/targets`, {
    engine: 'postgresql',
    name: 'ledger',
    connection: { host: '127.0.0.1', port: pgPort(), database: source, user: 'postgres' },
    storageId,
  });
  expect(t.status, JSON.stringify(t.body)).toBe(201);
  targetId = t.body.id;
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await cleanupAll();
});

async function openDatabase(page: Page, user: string) {
  await logInToOverview(cp, page, user);
  await page.getByRole('link', { name: 'Databases' }).click();
  await openScreen(page, 'ledger', /^ledger/);
}

const schedules = async () =>
  (await cp.api<{ items: { cron: string }[] }>('GET', `/api/v1/targets/${targetId}/schedules`)).body.items;

describe('a database’s page', () => {
  it('schedules: the next five runs in the schedule’s time zone as it is typed, and the clash warning the API gives', async () => {
    const { context, page, problems } = await newPage(browser);
    await openDatabase(page, 'ada');
    await page.getByRole('button', { name: 'Add a schedule' }).click();
    const form = page.getByRole('form', { name: 'New schedule' });
    await form.getByLabel('Cron expression').fill('0 3 * * *');
    await form.getByLabel('Time zone').fill('Asia/Kolkata');
    const runs = form.getByTestId('next-runs').locator('li');
    await expect.poll(() => runs.count(), { timeout: 5000 }).toBe(5);
    for (const r of await runs.allTextContents()) expect(r).toMatch(/03:00 GMT\+5:30/);
    expect(await form.getByText('dbbackup schedule create ledger --cron').count()).toBe(1);
    await form.getByLabel('Cron expression').fill('61 * * * *');
    await form.getByText('Not a schedule').waitFor();
    expect(await form.getByRole('button', { name: 'Create the schedule' }).isDisabled()).toBe(true);
    await form.getByLabel('Cron expression').fill('0 3 * * *');
    await form.getByRole('button', { name: 'Create the schedule' }).click();
    await page.getByTestId('schedule-0 3 * * *').waitFor({ timeout: 10_000 });
    expect((await schedules()).map((s) => s.cron)).toEqual(['0 3 * * *']);

    // Two minutes later in the same zone: the API's clash is shown, and nothing is saved until confirmed.
    await page.getByRole('button', { name: 'Add a schedule' }).click();
    await form.getByLabel('Cron expression').fill('2 3 * * *');
    await form.getByLabel('Time zone').fill('Asia/Kolkata');
    await form.getByRole('button', { name: 'Create the schedule' }).click();
    const clash = form.getByTestId('schedule-clash');
    await clash.waitFor({ timeout: 10_000 });
    expect(await clash.textContent()).toMatch(/within 5 minutes of schedule/);
    expect(await schedules()).toHaveLength(1);
    expect(await accessibilityProblems(page)).toEqual([]);
    await shot(page, 'database-schedule-clash');
    await clash.getByLabel('Save it anyway').check();
    await form.getByRole('button', { name: 'Create the schedule' }).click();
    await page.getByTestId('schedule-2 3 * * *').waitFor({ timeout: 10_000 });
    expect((await schedules()).map((s) => s.cron).sort()).toEqual(['0 3 * * *', '2 3 * * *']);
    expect(problems).toEqual([]);
    await context.close();
  }, 120_000);

  it('Backup now, then restore into a new database from the page: the database is identical', async () => {
    const { context, page, problems } = await newPage(browser);
    await openDatabase(page, 'ada');
    await page.getByRole('button', { name: 'Backup now' }).click();
    await page.waitForURL(/\/jobs\//);
    await expect
      .poll(() => page.getByTestId('job-state').textContent(), { timeout: 120_000 })
      .toBe('succeeded');
    await page.goBack();
    await page.getByRole('heading', { name: /^ledger/ }).waitFor();
    const row = page.locator('[data-testid^="backup-"]').first();
    await row.waitFor({ timeout: 15_000 });
    await row.getByRole('button', { name: 'Restore' }).click();
    const dialog = page.getByRole('dialog');
    const into = `${source}_copy`;
    await dialog.getByLabel('Destination database').fill(into);
    await dialog.getByLabel(/^create/).check();
    expect(await dialog.getByText(`--to ${into} --on-conflict create`).count()).toBe(1);
    expect(await accessibilityProblems(page)).toEqual([]);
    await shot(page, 'database-restore-dialog');
    await dialog.getByRole('button', { name: 'Restore' }).click();
    await page.waitForURL(/\/jobs\//);
    await expect
      .poll(() => page.getByTestId('job-state').textContent(), { timeout: 120_000 })
      .toBe('succeeded');
    const jobId = page.url().split('/').pop()!;
    expect(await fingerprint(into)).toEqual(await fingerprint(source));
    // The restore is in the page's history.
    await page.goBack();
    await page.getByTestId(`restore-${jobId}`).waitFor({ timeout: 15_000 });
    expect(await page.getByTestId(`restore-${jobId}`).textContent()).toContain(into);
    expect(await accessibilityProblems(page)).toEqual([]);
    await shot(page, 'database');
    expect(problems).toEqual([]);
    await context.close();
  }, 300_000);

  it('the restore dialog restores through another target of the same engine, and the CLI line says so', async () => {
    const warehouse = await smallPgTarget(cp, agent.id, storageId, 'warehouse');
    const { context, page, problems } = await newPage(browser);
    await openDatabase(page, 'ada');
    await page.locator('[data-testid^="backup-"]').first().getByRole('button', { name: 'Restore' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Through the server of').selectOption(warehouse);
    const into = `${source}_via`;
    await dialog.getByLabel('Destination database').fill(into);
    await dialog.getByLabel(/^create/).check();
    expect(await dialog.getByText(`--target warehouse --to ${into} --on-conflict create`).count()).toBe(1);
    await dialog.getByRole('button', { name: 'Restore' }).click();
    await page.waitForURL(/\/jobs\//);
    await expect
      .poll(() => page.getByTestId('job-state').textContent(), { timeout: 120_000 })
      .toBe('succeeded');
    const jobId = page.url().split('/').pop()!;
    expect((await cp.api<{ targetId: string }>('GET', `/api/v1/jobs/${jobId}`)).body.targetId).toBe(
      warehouse,
    );
    expect(await fingerprint(into)).toEqual(await fingerprint(source));
    expect(problems).toEqual([]);
    await context.close();
  }, 180_000);

  it('retention previews a policy before it is saved; Delete refuses the newest good backup and removes an older one', async () => {
    expect((await runBackup(cp, targetId)).job.state).toBe('succeeded');
    const items = (await cp.api<{ items: Backup[] }>('GET', `/api/v1/backups?target=${targetId}`)).body.items;
    expect(items).toHaveLength(2);
    const [newest, older] = items as [Backup, Backup];
    const { context, page, problems } = await newPage(browser);
    await openDatabase(page, 'ada');
    await page.getByRole('spinbutton', { name: /Keep the last/ }).fill('1');
    const preview = page.getByTestId('retention-preview');
    await expect
      .poll(() => preview.textContent(), { timeout: 10_000 })
      .toContain('1 of 2 backups would be removed');
    expect(await preview.textContent()).toContain(older.id.slice(0, 8));
    // Previewed, not saved.
    expect(
      (await cp.api<{ policy: unknown }>('GET', `/api/v1/targets/${targetId}/retention`)).body.policy,
    ).toEqual({});

    const newestRow = page.getByTestId(`backup-${newest.id}`);
    await newestRow.getByRole('button', { name: 'Delete' }).click();
    await newestRow.getByRole('button', { name: 'Delete for good' }).click();
    await expect
      .poll(() => newestRow.getByRole('alert').textContent(), { timeout: 10_000 })
      .toContain('newest good backup');
    const olderRow = page.getByTestId(`backup-${older.id}`);
    await olderRow.getByRole('button', { name: 'Delete' }).click();
    await olderRow.getByRole('button', { name: 'Delete for good' }).click();
    await olderRow.waitFor({ state: 'detached', timeout: 30_000 });
    const gone = (await cp.api<Backup>('GET', `/api/v1/backups/${older.id}`)).body;
    expect(gone.deletedReason).toBe('deleted on request by ada');
    expect(existsSync(`${storeDir}/${older.objectKey}`)).toBe(false);
    expect(existsSync(`${storeDir}/${newest.objectKey}`)).toBe(true);
    expect((await cp.api<Backup>('GET', `/api/v1/backups/${newest.id}`)).body.deletedAt).toBeNull();
    expect(problems).toEqual([]);
    await context.close();
  }, 180_000);

  it('a viewer sees the page without one control that changes anything, and a forged delete from its session is refused', async () => {
    const { context, page } = await newPage(browser);
    await openDatabase(page, 'bob');
    await page.locator('[data-testid^="backup-"]').first().waitFor({ timeout: 15_000 });
    for (const name of [
      'Backup now',
      'Verify latest',
      'Restore',
      'Verify',
      'Delete',
      'Add a schedule',
      'Edit',
      'Save the policy',
    ])
      expect(await page.getByRole('button', { name, exact: true }).count(), name).toBe(0);
    expect(await page.getByRole('spinbutton', { name: /Keep the last/ }).isDisabled()).toBe(true);
    const before = (await cp.api<{ items: Backup[] }>('GET', `/api/v1/backups?target=${targetId}`)).body
      .items;
    const forged = await forge(page, 'DELETE', `/backups/${before[0]!.id}`);
    expect(forged.status).toBe(403);
    const forgedSchedule = await forge(page, 'POST', `/targets/${targetId}/schedules`, { cron: '0 5 * * *' });
    expect(forgedSchedule.status).toBe(403);
    expect(
      (await cp.api<{ items: Backup[] }>('GET', `/api/v1/backups?target=${targetId}`)).body.items,
    ).toEqual(before);
    expect(await schedules()).toHaveLength(2);
    expect(await accessibilityProblems(page)).toEqual([]);
    await shot(page, 'database-viewer');
    await context.close();
  }, 120_000);
});

describe('the overview after a missed backup', () => {
  it('an agent away past its schedule: the overview counts the overdue database and the offline agent as the API does', async () => {
    const away = await startAgent(cp);
    await waitFor(async () => (await getAgent(cp, away.id)).status === 'online', {
      what: 'second agent online',
    });
    const late = await smallPgTarget(cp, away.id, storageId, 'late-ledger');
    expect(
      (await cp.api('POST', `/api/v1/targets/${late}/schedules`, { cron: '*/4 * * * * *' })).status,
    ).toBe(201);
    await waitFor(
      async () =>
        ((await cp.api<{ rpoSeconds: number | null }>('GET', `/api/v1/targets/${late}/health`)).body
          .rpoSeconds ?? -1) >= 0,
      { timeoutMs: 30_000, what: 'a first scheduled backup' },
    );
    await away.proc.kill('SIGKILL');
    await waitFor(async () => (await getAgent(cp, away.id)).status === 'offline', {
      what: 'second agent offline',
    });
    await missedSinceLastGood(cp, late);
    const { context, page, problems } = await newPage(browser);
    await logInToOverview(cp, page, 'bob');
    const o = (
      await cp.api<{
        agents: { online: number; offline: number };
        targets: { total: number; overdue: number };
      }>('GET', '/api/v1/dashboard/overview')
    ).body;
    expect(o.targets.overdue).toBe(1);
    expect(o.agents.offline).toBe(1);
    await expect.poll(() => page.getByTestId('targets-overdue').textContent(), { timeout: 10_000 }).toBe('1');
    expect(await page.getByTestId('agents-offline').textContent()).toBe(String(o.agents.offline));
    expect(await page.getByTestId('agents-online').textContent()).toBe(String(o.agents.online));
    expect(await page.getByTestId('targets-total').textContent()).toBe(String(o.targets.total));
    expect(await page.getByTestId('fleet-sentence').textContent()).toContain('1 overdue');
    // The database's own page says it is overdue, in red.
    await page.getByRole('link', { name: 'Databases' }).click();
    await page.getByRole('link', { name: 'late-ledger' }).click();
    await page.getByRole('heading', { name: /^late-ledger/ }).waitFor();
    expect(await page.getByRole('heading', { name: /^late-ledger/ }).textContent()).toContain('overdue');
    expect(await page.getByTestId('last-good').getAttribute('class')).toBe('late');
    expect(await page.getByText('backup_missed').count()).toBe(1);
    expect(await accessibilityProblems(page)).toEqual([]);
    await shot(page, 'database-overdue');
    expect(problems).toEqual([]);
    await context.close();
  }, 120_000);
});
