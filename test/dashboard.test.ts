import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { type ControlPlane, cleanupAll, REPO_ROOT, startAgent } from '@dbbackup/testkit';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlane } from './support.js';

/**
 * The web dashboard in Debian's Chromium (headless, kept off the network), against a real
 * control plane. Screenshots of each screen go to .tmp/screenshots/ (a test artifact).
 */

const CHROMIUM = '/usr/bin/chromium';
const PASSWORD = 'correct horse battery staple';
const SHOTS = path.join(REPO_ROOT, '.tmp', 'screenshots');
const AXE = readFileSync(path.join(REPO_ROOT, 'node_modules/axe-core/axe.min.js'), 'utf8');

let cp: ControlPlane;
let browser: Browser;

async function newPage(): Promise<{ context: BrowserContext; page: Page; problems: string[] }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems: string[] = [];
  // The page must run under its Content-Security-Policy without a violation or a script error.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(String(e)));
  return { context, page, problems };
}

async function logIn(page: Page, username: string, password = PASSWORD) {
  await page.goto(`${cp.url}/`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

/** axe-core's serious and critical violations on the page as it is now. */
async function accessibilityProblems(page: Page) {
  // Evaluated through the DevTools protocol: the page's CSP (no inline script) stays as it is.
  await page.evaluate(`${AXE}\n;0`);
  const violations = (await page.evaluate('axe.run().then((r) => r.violations)')) as {
    id: string;
    impact: string;
    help: string;
  }[];
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

async function shot(page: Page, name: string) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

beforeAll(async () => {
  cp = await controlPlane();
  for (const [username, role] of [
    ['ada', 'operator'],
    ['bob', 'viewer'],
  ])
    expect((await cp.api('POST', '/api/v1/users', { username, password: PASSWORD, role })).status).toBe(201);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await cleanupAll();
});

describe('the web dashboard in a real browser', () => {
  it('log in: a wrong password is said next to the form; the right one opens the overview; logout ends the session', async () => {
    const { context, page, problems } = await newPage();
    await logIn(page, 'ada', 'not the password');
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('invalid username or password');
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
    // A real agent process on this host.
    await startAgent(cp);
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
    await expect.poll(() => page.getByTestId('agents-online').textContent()).toBe(String(agents.online));
    expect(agents.online).toBe(1);
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
    await page.getByText('The control plane cannot be reached').waitFor({ timeout: 30_000 });
    await cp.restart();
    await page
      .getByText('The control plane cannot be reached')
      .waitFor({ state: 'detached', timeout: 60_000 });
    await page.getByTestId('fleet-sentence').waitFor();
    await context.close();
  }, 120_000);
});
