import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type ControlPlane, cleanupAll, onCleanup, startAgent, trackDir, waitFor } from '@dbbackup/testkit';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  accessibilityProblems,
  addUsers,
  forge,
  launchChromium,
  logInToOverview,
  newPage,
  openScreen,
  PASSWORD,
  shot,
} from './browser-support.js';
import { controlPlane, getAgent } from './support.js';

/**
 * Settings and Hosts in Debian's Chromium against a real control plane and agents:
 * storage tested from a host, a channel's test message to a real receiver, users and
 * tokens, the audit trail, the key's export and rotation; revoke and the upgrade hint.
 */

let cp: ControlPlane;
let browser: Browser;
let agent: Awaited<ReturnType<typeof startAgent>>;
const received: string[] = [];
let hookUrl: string;

beforeAll(async () => {
  // A bundle newer than any agent here: the Hosts page shows the upgrade hint.
  const bundles = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-settings-bundles-')));
  const file = 'dbbackup-agent-99.0.0-linux-x64-node115.tar.gz';
  writeFileSync(path.join(bundles, file), 'not a real bundle');
  writeFileSync(path.join(bundles, `${file}.sha256`), `${'0'.repeat(64)}  ${file}\n`);
  cp = await controlPlane({ env: { DBBACKUP_AGENT_BUNDLE_DIR: bundles } });
  await addUsers(cp, [
    ['root', 'admin'],
    ['ada', 'operator'],
  ]);
  agent = await startAgent(cp);
  await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
  for (const [name, directory] of [
    ['disk', `${agent.stateDir}/backups`],
    // A file where the directory should be: nothing can be written below it.
    ['broken', path.join(agent.stateDir, 'agent.json')],
  ])
    expect((await cp.api('POST', '/api/v1/storage', { kind: 'local', name, directory })).status).toBe(201);
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      received.push(`${req.url} ${body}`);
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(() => new Promise<void>((r) => server.close(() => r())));
  hookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  for (const [name, url] of [
    ['ops-hook', hookUrl],
    ['dead-hook', 'http://127.0.0.1:9/nothing'],
  ])
    expect(
      (
        await cp.api('POST', '/api/v1/notifications/channels', {
          name,
          config: { kind: 'webhook', url, secret: 'a secret of sixteen or more' },
        })
      ).status,
    ).toBe(201);
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await cleanupAll();
});

async function openSettings(page: Page, user: string) {
  await logInToOverview(cp, page, user);
  await openScreen(page, 'Settings', 'Settings');
}

describe('settings', () => {
  it('storage is tested from a host: a working profile and a broken one, each said in words', async () => {
    const { context, page, problems } = await newPage(browser);
    await openSettings(page, 'ada');
    const disk = page.getByTestId('storage-disk');
    await disk.getByRole('button', { name: 'Test' }).click();
    await expect
      .poll(() => disk.getByRole('status').textContent(), { timeout: 30_000 })
      .toMatch(/^Works: wrote 64 KiB in \d+ ms, read it back in \d+ ms, deleted it in \d+ ms\.$/);
    const broken = page.getByTestId('storage-broken');
    await broken.getByRole('button', { name: 'Test' }).click();
    await expect
      .poll(() => broken.getByRole('status').textContent(), { timeout: 30_000 })
      .toMatch(/^Failed: writing .* failed/);
    // A channel's test message reaches the real receiver; a dead one says why.
    await page
      .getByTestId('channel-ops-hook')
      .getByRole('button', { name: /Send a test/ })
      .click();
    await page.getByTestId('channel-ops-hook').getByText('Delivered.').waitFor({ timeout: 30_000 });
    expect(received.some((b) => b.includes('Test message for channel ops-hook'))).toBe(true);
    await page
      .getByTestId('channel-dead-hook')
      .getByRole('button', { name: /Send a test/ })
      .click();
    await page
      .getByTestId('channel-dead-hook')
      .getByText(/^Not delivered: /)
      .waitFor({ timeout: 30_000 });
    // An operator sees no admin section, and a forged admin call from its session is refused.
    expect(await page.getByRole('heading', { name: 'Users and API tokens' }).count()).toBe(0);
    const forged = await forge(page, 'POST', '/users', {
      username: 'mallory',
      password: PASSWORD,
      role: 'admin',
    });
    expect(forged.status).toBe(403);
    const users = (await cp.api<{ items: { username: string }[] }>('GET', '/api/v1/users')).body.items;
    expect(users.map((u) => u.username)).not.toContain('mallory');
    // Nor can it change where alerts go: no Change button, and a forged change is refused.
    expect(await page.getByRole('button', { name: /^Change/ }).count()).toBe(0);
    const hooks = async () =>
      (await cp.api<{ items: { id: string; name: string }[] }>('GET', '/api/v1/notifications/channels')).body
        .items;
    const opsHook = (await hooks()).find((c) => c.name === 'ops-hook')!;
    const redirect = await forge(page, 'PATCH', `/notifications/channels/${opsHook.id}`, {
      config: { kind: 'webhook', url: 'http://127.0.0.1:9/mallory', secret: 'a secret of sixteen or more' },
      events: ['agent.online'],
    });
    expect(redirect.status).toBe(403);
    expect((await hooks()).find((c) => c.name === 'ops-hook')).toEqual(opsHook);
    expect(await accessibilityProblems(page)).toEqual([]);
    await shot(page, 'settings-operator');
    expect(problems).toEqual([]);
    await context.close();
  }, 120_000);

  it('an admin adds a user and a token (shown once, then working, then revoked), filters, exports and verifies the audit trail', async () => {
    const { context, page, problems } = await newPage(browser);
    await openSettings(page, 'root');
    const userForm = page.getByRole('form', { name: 'New user' });
    await userForm.getByLabel('Username').fill('carol');
    await userForm.getByLabel(/^Password/).fill(PASSWORD);
    await userForm.getByLabel('Role').selectOption('operator');
    await userForm.getByRole('button', { name: 'Add the user' }).click();
    await page.getByTestId('user-carol').waitFor({ timeout: 10_000 });
    const carol = (
      await cp.api<{ items: { username: string; role: string }[] }>('GET', '/api/v1/users')
    ).body.items.find((u) => u.username === 'carol');
    expect(carol?.role).toBe('operator');

    const tokenForm = page.getByRole('form', { name: 'New API token' });
    await tokenForm.getByLabel('Name').fill('nightly-report');
    await tokenForm.getByRole('button', { name: 'Create the token' }).click();
    const token = (await page.getByTestId('new-token').textContent()) ?? '';
    expect(token).toMatch(/^dbb_api_/);
    const asToken = () =>
      fetch(`${cp.url}/api/v1/targets`, { headers: { authorization: `Bearer ${token}` } });
    expect((await asToken()).status).toBe(200);
    await page
      .getByTestId('token-nightly-report')
      .getByRole('button', { name: /Revoke/ })
      .click();
    await page.getByTestId('token-nightly-report').waitFor({ state: 'detached', timeout: 10_000 });
    expect((await asToken()).status).toBe(401);
    expect(await page.getByTestId('new-token').count()).toBe(0);

    const filters = page.getByRole('form', { name: 'Audit filters' });
    await filters.getByLabel(/^Who/).fill('user:root');
    await filters.getByLabel(/^Action/).fill('POST /api/v1/users');
    await filters.getByRole('button', { name: 'Filter' }).click();
    const rows = page.getByTestId('audit-rows').locator('tbody tr');
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(1);
    expect(await rows.first().textContent()).toContain('POST /api/v1/users');
    const [file] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Export as CSV' }).click(),
    ]);
    const csv = readFileSync(await file.path(), 'utf8')
      .trim()
      .split('\n');
    expect(csv[0]).toMatch(/^id,at,actor/);
    expect(csv).toHaveLength(2);
    await page.getByRole('button', { name: 'Verify the chain' }).click();
    await expect
      .poll(() => page.getByTestId('audit-verdict').textContent(), { timeout: 10_000 })
      .toMatch(/^The chain is whole: \d+ rows/);
    expect(await accessibilityProblems(page)).toEqual([]);
    await shot(page, 'settings');
    expect(problems).toEqual([]);
    await context.close();
  }, 120_000);

  it('an admin adds a channel from the form (a bad one refused in words), tests it, changes its events and its connection, and disables it; its secrets never show again', async () => {
    const { context, page, problems } = await newPage(browser);
    await openSettings(page, 'root');
    const form = page.getByRole('form', { name: 'New channel' });
    const channels = async () =>
      (
        await cp.api<{ items: { name: string; enabled: boolean; events: string[]; settings: unknown }[] }>(
          'GET',
          '/api/v1/notifications/channels',
        )
      ).body.items;
    const before = await channels();
    await form.getByLabel('Name').fill('pager');
    await form.getByLabel('URL').fill(`${hookUrl}/pager`);
    await form.getByLabel(/^Signing secret/).fill('short');
    await form.getByRole('button', { name: 'Add the channel' }).click();
    await expect.poll(() => form.getByRole('alert').textContent(), { timeout: 10_000 }).toMatch(/\(422\)/);
    expect(await channels()).toEqual(before);
    const secret = 'pager secret of more than sixteen';
    await form.getByLabel(/^Signing secret/).fill(secret);
    expect(await form.getByText('"secret":"…"').count()).toBe(1);
    // The successes, which a new channel is not sent unless asked, are asked for.
    await form.getByRole('checkbox', { name: 'backup.succeeded' }).check();
    await form.getByRole('button', { name: 'Add the channel' }).click();
    const row = page.getByTestId('channel-pager');
    await row.waitFor({ timeout: 10_000 });
    expect(await page.content()).not.toContain(secret);
    const pager = async () => (await channels()).find((c) => c.name === 'pager')!;
    expect((await pager()).events).toContain('backup.succeeded');
    const tested = async (path: string) => {
      const count = received.length;
      await row.getByRole('button', { name: /Send a test/ }).click();
      await row.getByText('Delivered.').waitFor({ timeout: 30_000 });
      expect(
        received
          .slice(count)
          .some((b) => b.startsWith(`${path} `) && b.includes('Test message for channel pager')),
      ).toBe(true);
    };
    await tested('/hook/pager');
    // A change of events keeps the connection settings, secret included, untouched.
    await row.getByRole('button', { name: 'Change pager' }).click();
    const change = page.getByRole('form', { name: 'Change pager' });
    await change.getByRole('checkbox', { name: 'agent.offline' }).uncheck();
    expect(await change.getByLabel('URL', { exact: true }).count()).toBe(0);
    await change.getByRole('button', { name: 'Save pager' }).click();
    await change.waitFor({ state: 'detached', timeout: 10_000 });
    expect((await pager()).events).not.toContain('agent.offline');
    expect((await pager()).events).toContain('backup.succeeded');
    await tested('/hook/pager');
    // Its connection replaced: the URL and secret typed again, the old ones gone.
    await row.getByRole('button', { name: 'Change pager' }).click();
    await change.getByLabel(/^Replace its connection settings/).check();
    await change.getByLabel('URL', { exact: true }).fill(`${hookUrl}/pager-2`);
    const secret2 = 'the second pager secret, long enough';
    await change.getByLabel(/^Signing secret/).fill(secret2);
    expect(await change.getByText('"secret":"…"').count()).toBe(1);
    await shot(page, 'settings-channel-change');
    await change.getByRole('button', { name: 'Save pager' }).click();
    await change.waitFor({ state: 'detached', timeout: 10_000 });
    expect((await pager()).settings).toEqual({ urlHost: new URL(hookUrl).host });
    await tested('/hook/pager-2');
    expect(await page.content()).not.toContain(secret2);
    expect(await accessibilityProblems(page)).toEqual([]);
    await row.getByRole('button', { name: /^Disable/ }).click();
    await expect
      .poll(async () => (await channels()).find((c) => c.name === 'pager')?.enabled, { timeout: 10_000 })
      .toBe(false);
    expect(problems).toEqual([]);
    await context.close();
  }, 120_000);

  it('the key: its export is a download holding the active key; a rotation shows its progress to the end', async () => {
    const before = (await cp.api<{ kid: string }>('GET', '/api/v1/keys/kek')).body.kid;
    const { context, page, problems } = await newPage(browser);
    await openSettings(page, 'root');
    await expect.poll(() => page.getByTestId('kek-id').textContent(), { timeout: 10_000 }).toBe(before);
    await page.getByRole('button', { name: 'Export the key' }).click();
    const [file] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download the private key' }).click(),
    ]);
    const exported = JSON.parse(readFileSync(await file.path(), 'utf8')) as {
      kid: string;
      privateJwk: { d?: string };
    };
    expect(exported.kid).toBe(before);
    expect(exported.privateJwk.d).toBeTruthy();
    // The key never appears on the page itself.
    expect(await page.content()).not.toContain(exported.privateJwk.d);
    await page.getByRole('button', { name: 'Rotate the key' }).click();
    const progress = page.getByTestId('rotation');
    await expect
      .poll(() => progress.textContent(), { timeout: 60_000 })
      .toMatch(/succeeded, (\d+) of \1 backups/);
    const after = (await cp.api<{ kid: string }>('GET', '/api/v1/keys/kek')).body.kid;
    expect(after).not.toBe(before);
    await expect.poll(() => page.getByTestId('kek-id').textContent(), { timeout: 10_000 }).toBe(after);
    expect(problems).toEqual([]);
    await context.close();
  }, 120_000);
});

describe('hosts', () => {
  it('an agent older than the bundle served gets the upgrade hint; Revoke ends a host from the page', async () => {
    const spare = await startAgent(cp);
    await waitFor(async () => (await getAgent(cp, spare.id)).status === 'online', { what: 'spare online' });
    const host = ((await getAgent(cp, spare.id)) as unknown as { hostname: string }).hostname;
    const { context, page, problems } = await newPage(browser);
    await logInToOverview(cp, page, 'ada');
    await page.getByRole('link', { name: 'Hosts' }).click();
    await page.getByTestId('upgrade-hint').first().waitFor({ timeout: 10_000 });
    expect(await page.getByTestId('upgrade-hint').first().textContent()).toContain('99.0.0 is available');
    // Two agents on one machine share a host name: the spare one is found by its row's order.
    const rows = page.locator(`[data-testid="host-${host}"]`);
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(2);
    const agents = (await cp.api<{ items: { id: string }[] }>('GET', '/api/v1/agents?limit=500')).body.items;
    const row = rows.nth(agents.findIndex((a) => a.id === spare.id));
    await row.getByText('Facts and databases').click();
    await row.getByRole('button', { name: 'Revoke', exact: true }).click();
    await row.getByRole('button', { name: /for good/ }).click();
    await waitFor(async () => (await getAgent(cp, spare.id)).status === 'revoked', { what: 'revoked' });
    expect((await getAgent(cp, agent.id)).status).toBe('online');
    expect(await accessibilityProblems(page)).toEqual([]);
    await shot(page, 'hosts-upgrade');
    expect(problems).toEqual([]);
    await context.close();
  }, 120_000);
});
