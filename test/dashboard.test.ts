import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type ControlPlane,
  cleanupAll,
  onCleanup,
  query,
  REPO_ROOT,
  startAgent,
  startPostgres,
  trackDir,
  waitFor,
} from '@dbbackup/testkit';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  accessibilityProblems,
  forge,
  launchChromium,
  newPage as openPage,
  PASSWORD,
  shot,
  logIn as signIn,
} from './browser-support.js';
import { controlPlane } from './support.js';

/**
 * The web dashboard in Debian's Chromium (headless, kept off the network), against a real
 * control plane. Screenshots of each screen go to .tmp/screenshots/ (a test artifact).
 */

let cp: ControlPlane;
let browser: Browser;
let agent: Awaited<ReturnType<typeof startAgent>>;
let storageId: string;
let work: string;

const newPage = () => openPage(browser);
const logIn = (page: Page, username: string, password = PASSWORD) => signIn(cp, page, username, password);

beforeAll(async () => {
  // The agent bundle install.sh downloads from this control plane.
  const bundles = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-dash-bundles-')));
  execFileSync('node', ['pack.mjs', '--out', bundles], { cwd: path.join(REPO_ROOT, 'agent') });
  cp = await controlPlane({ env: { DBBACKUP_AGENT_BUNDLE_DIR: bundles } });
  for (const [username, role] of [
    ['ada', 'operator'],
    ['bob', 'viewer'],
  ])
    expect((await cp.api('POST', '/api/v1/users', { username, password: PASSWORD, role })).status).toBe(201);
  agent = await startAgent(cp);
  work = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-dash-')));
  const s = await cp.api<{ id: string }>('POST', '/api/v1/storage', {
    kind: 'local',
    name: 'local',
    directory: path.join(work, 'store'),
  });
  expect(s.status, JSON.stringify(s.body)).toBe(201);
  storageId = s.body.id;
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await cleanupAll();
});

describe('the web dashboard in a real browser', () => {
  it('log in: a wrong password is said next to the form; the right one opens the overview; logout ends the session', async () => {
    const { context, page, problems } = await newPage();
    await logIn(page, 'ada', 'not the password');
    await expect
      .poll(() => page.getByRole('alert').textContent(), { timeout: 10_000 })
      .toContain('invalid username or password');
    expect(new URL(page.url()).pathname).toBe('/login');
    expect(await accessibilityProblems(page)).toEqual([]);
    await shot(page, 'login');

    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByTestId('fleet-sentence').waitFor();
    expect(new URL(page.url()).pathname).toBe('/');
    // The refresh token is in an HttpOnly cookie the page cannot read; nothing is in storage.
    expect(await page.evaluate('document.cookie')).not.toContain('dbb_refresh');
    expect(await page.evaluate('localStorage.length + sessionStorage.length')).toBe(0);
    const cookies = await context.cookies();
    const refresh = cookies.find((c) => c.name === 'dbb_refresh')!;
    const csrf = cookies.find((c) => c.name === 'dbb_csrf')!;
    expect(refresh.httpOnly).toBe(true);
    expect(refresh.sameSite).toBe('Strict');

    // A reload continues the session from the cookie (the access token lived in memory only).
    await page.reload();
    await page.getByTestId('fleet-sentence').waitFor();
    const renewed = (await context.cookies()).find((c) => c.name === 'dbb_refresh')!;
    expect(renewed.value).not.toBe(refresh.value);

    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('heading', { name: 'Log in to dbbackup' }).waitFor();
    // The session's last refresh cookie no longer works, with its CSRF token or without.
    const after = await fetch(`${cp.url}/api/v1/auth/session/refresh`, {
      method: 'POST',
      headers: {
        cookie: `dbb_refresh=${renewed.value}; dbb_csrf=${csrf.value}`,
        'x-csrf-token': (await context.cookies()).find((c) => c.name === 'dbb_csrf')?.value ?? csrf.value,
      },
    });
    expect([401, 403]).toContain(after.status);
    expect(problems).toEqual([]);
    await context.close();
  });

  it('the overview says the state of the fleet in one line, with the counts the API gives', async () => {
    await expect
      .poll(async () => (await cp.api<{ online: number }>('GET', '/api/v1/agents/summary')).body.online, {
        timeout: 15_000,
      })
      .toBe(1);
    const { context, page, problems } = await newPage();
    await logIn(page, 'bob');
    const sentence = page.getByTestId('fleet-sentence');
    await sentence.waitFor();
    const agents = (await cp.api<{ online: number; offline: number }>('GET', '/api/v1/agents/summary')).body;
    const targets = (await cp.api<{ total: number }>('GET', '/api/v1/targets/summary')).body;
    await expect
      .poll(() => page.getByTestId('agents-online').textContent(), { timeout: 10_000 })
      .toBe(String(agents.online));
    expect(agents.online).toBe(1); // the real agent process this file started
    expect(await page.getByTestId('agents-offline').textContent()).toBe(String(agents.offline));
    expect(await page.getByTestId('targets-total').textContent()).toBe(String(targets.total));
    expect(await sentence.textContent()).toContain(
      targets.total === 0 ? 'No databases are set up yet' : `${targets.total}`,
    );
    expect(await page.getByText('dbbackup status').count()).toBe(1);
    expect(await accessibilityProblems(page)).toEqual([]);
    await shot(page, 'overview');
    expect(problems).toEqual([]);
    await context.close();
  });

  it('a lost connection to the control plane is shown as such, and the page recovers by itself', async () => {
    const { context, page } = await newPage();
    await logIn(page, 'ada');
    await page.getByTestId('fleet-sentence').waitFor();
    await cp.stop();
    const banner = page.getByText('The control plane cannot be reached. This page retries by itself.', {
      exact: true,
    });
    await banner.waitFor({ timeout: 30_000 });
    // A query whose retries ran out shows the same words beside its section.
    await page
      .getByText('the control plane cannot be reached; retrying', { exact: true })
      .first()
      .waitFor({ timeout: 30_000 });
    await cp.restart();
    await banner.waitFor({ state: 'detached', timeout: 60_000 });
    // Once the page has recovered, neither is left.
    await expect
      .poll(() => page.getByText(/the control plane cannot be reached/i).count(), { timeout: 30_000 })
      .toBe(0);
    await page.getByTestId('fleet-sentence').waitFor();
    await context.close();
  }, 120_000);
});

/** A SQLite database on this host, adopted as a target of the test's agent. */
async function sqliteTarget(name: string, rows = 20_000) {
  const file = path.join(work, `${name}.db`);
  execFileSync('sqlite3', [
    file,
    `CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${rows}) INSERT INTO t SELECT i, hex(randomblob(32)) FROM n;`,
  ]);
  const t = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agent.id}/targets`, {
    engine: 'sqlite',
    name,
    connection: { path: file },
    storageId,
  });
  expect(t.status, JSON.stringify(t.body)).toBe(201);
  return { id: t.body.id, file };
}

describe('acting from the dashboard', () => {
  it('Backup now: the job page streams its state and log live, and the backup shows in the table', async () => {
    const shop = await sqliteTarget('shop');
    const { context, page, problems } = await newPage();
    await logIn(page, 'ada');
    await page.getByTestId('fleet-sentence').waitFor();
    await page.getByRole('link', { name: 'Databases' }).click();
    const row = page.getByTestId('target-shop');
    await row.waitFor();
    expect(await row.getByText('never', { exact: true }).count()).toBeGreaterThan(0);
    expect(await row.getByText('dbbackup backup shop').count()).toBe(1);
    await row.getByRole('button', { name: 'Backup now' }).click();
    await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
    const jobId = page.url().split('/').pop()!;
    await expect
      .poll(() => page.getByTestId('job-state').textContent(), { timeout: 60_000 })
      .toBe('succeeded');
    const log = (await page.getByTestId('job-log').textContent()) ?? '';
    // The lines the API has for the job, in order, all shown.
    const api = (await cp.api<{ items: { message: string }[] }>('GET', `/api/v1/jobs/${jobId}/logs`)).body
      .items;
    expect(api.length).toBeGreaterThan(1);
    for (const l of api) expect(log).toContain(l.message);
    expect(await accessibilityProblems(page)).toEqual([]);
    await shot(page, 'job');
    await page.getByRole('link', { name: 'Databases' }).click();
    await expect.poll(() => row.locator('.badge').textContent(), { timeout: 15_000 }).toBe('healthy');
    expect(await accessibilityProblems(page)).toEqual([]);
    await shot(page, 'databases');
    expect(
      (await cp.api<{ items: unknown[] }>('GET', `/api/v1/backups?target=${shop.id}`)).body.items,
    ).toHaveLength(1);
    expect(problems).toEqual([]);
    await context.close();
  }, 120_000);

  it('the overview’s counts match the API after a failed backup', async () => {
    const gone = await sqliteTarget('gone', 10);
    rmSync(gone.file);
    const r = await cp.api<{ id: string }>('POST', `/api/v1/targets/${gone.id}/backups`);
    expect(r.status).toBe(202);
    await waitFor(
      async () =>
        ['failed'].includes((await cp.api<{ state: string }>('GET', `/api/v1/jobs/${r.body.id}`)).body.state),
      { timeoutMs: 60_000, what: 'the backup of a deleted file failed' },
    );
    const { context, page } = await newPage();
    await logIn(page, 'bob');
    await page.getByTestId('fleet-sentence').waitFor();
    const o = (
      await cp.api<{
        targets: { total: number; failing: number; neverBackedUp: number };
        last24h: { failed: number };
      }>('GET', '/api/v1/dashboard/overview')
    ).body;
    expect(o.targets.failing).toBeGreaterThanOrEqual(1);
    await expect
      .poll(() => page.getByTestId('targets-failing').textContent())
      .toBe(String(o.targets.failing));
    expect(await page.getByTestId('targets-total').textContent()).toBe(String(o.targets.total));
    expect(await page.getByTestId('targets-never').textContent()).toBe(String(o.targets.neverBackedUp));
    expect(await page.getByTestId('fleet-sentence').textContent()).toContain(`${o.targets.failing} failing`);
    // Its day strip ends with a failed day.
    const strips = (
      await cp.api<{ items: { name: string; strip: string }[] }>('GET', '/api/v1/dashboard/targets')
    ).body.items;
    expect(strips.find((t) => t.name === 'gone')?.strip.at(-1)).toBe('f');
    expect(strips.find((t) => t.name === 'shop')?.strip.at(-1)).toBe('g');
    await shot(page, 'overview-attention');
    await context.close();
  }, 120_000);

  it('a viewer sees no control that would change anything, and a forged request from the viewer’s session is refused', async () => {
    const { context, page } = await newPage();
    await logIn(page, 'bob');
    await page.getByTestId('fleet-sentence').waitFor();
    await page.getByRole('link', { name: 'Databases' }).click();
    await page.getByTestId('target-shop').waitFor();
    expect(await page.getByRole('button', { name: 'Backup now' }).count()).toBe(0);
    const shopId = (
      await cp.api<{ items: { id: string; name: string }[] }>('GET', '/api/v1/dashboard/targets')
    ).body.items.find((t) => t.name === 'shop')!.id;
    const before = (await cp.api<{ items: unknown[] }>('GET', `/api/v1/jobs?target=${shopId}`)).body.items
      .length;
    // The page's own session, used by hand: renew it from the cookie, then ask for a backup.
    const forged = await forge(page, 'POST', `/targets/${shopId}/backups`);
    expect(forged.status).toBe(403);
    expect(forged.body?.detail).toContain('operator');
    expect(
      (await cp.api<{ items: unknown[] }>('GET', `/api/v1/jobs?target=${shopId}`)).body.items.length,
    ).toBe(before);
    await context.close();
  });
});

describe('adding a host from the dashboard', () => {
  it('Add a host: the one-liner from the page brings an agent the page shows online without a reload; adopt a discovered PostgreSQL database', async () => {
    // A PostgreSQL on the "new host", with a database for discovery to find over its socket.
    const pg = await startPostgres();
    await query(pg.url(), 'CREATE DATABASE inventory');
    const { context, page, problems } = await newPage();
    await logIn(page, 'ada');
    await page.getByTestId('fleet-sentence').waitFor();
    await page.getByRole('link', { name: 'Hosts' }).click();
    await page.getByRole('button', { name: 'Add a host' }).click();
    const line = (await page.getByTestId('install-command').textContent()) ?? '';
    const url = /curl -fsSL (\S+) \|/.exec(line)?.[1];
    const token = /--token (\S+)/.exec(line)?.[1];
    expect(url, line).toBe(`${cp.url}/install.sh`);
    expect(token).toMatch(/^dbb_enr_/);
    expect(await page.getByTestId('add-host-status').textContent()).toContain('Waiting for the new host');
    // The line as the DBA runs it, without sudo and systemd (this machine has neither to give).
    const host = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-dash-host-')));
    const script = await (await fetch(url!)).text();
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env))
      if (v !== undefined && !k.startsWith('DBBACKUP_') && !/proxy/i.test(k)) env[k] = v;
    Object.assign(env, {
      DBBACKUP_DISCOVER_PG_SOCKET_DIRS: pg.dir,
      npm_config_registry: 'http://127.0.0.1:9',
    });
    onCleanup(() => {
      try {
        process.kill(Number(readFileSync(path.join(host, 'state', 'agent.pid'), 'utf8')), 'SIGKILL');
      } catch {}
    });
    execFileSync(
      'sh',
      [
        '-s',
        '--',
        '--token',
        token!,
        '--no-systemd',
        '--prefix',
        `${host}/opt`,
        '--state-dir',
        `${host}/state`,
        '--config-dir',
        `${host}/etc`,
      ],
      { input: script, env, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    // Online on the page without a reload, with what it found.
    await page.getByText('is online').waitFor({ timeout: 60_000 });
    const found = page.getByTestId('found-inventory');
    await found.waitFor({ timeout: 60_000 });
    expect(await accessibilityProblems(page)).toEqual([]);
    await shot(page, 'hosts');
    await found.getByRole('button', { name: 'Adopt' }).click();
    await found.getByText('adopted').waitFor({ timeout: 30_000 });
    const agentId = JSON.parse(readFileSync(path.join(host, 'state', 'agent.json'), 'utf8'))
      .agentId as string;
    const targets = (
      await cp.api<{ items: { name: string; engine: string }[] }>('GET', `/api/v1/agents/${agentId}/targets`)
    ).body.items;
    expect(targets.map((t) => [t.engine, t.name])).toEqual([['postgresql', 'inventory']]);
    expect(problems).toEqual([]);
    await context.close();
  }, 180_000);
});
