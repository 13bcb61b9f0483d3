import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { type ControlPlane, REPO_ROOT } from '@dbbackup/testkit';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

/**
 * Driving the web dashboard in Debian's Chromium (headless, kept off the network):
 * sessions, axe-core, and the screenshots written to .tmp/screenshots/ (a test artifact).
 */

export const CHROMIUM = '/usr/bin/chromium';
export const PASSWORD = 'correct horse battery staple';
const SHOTS = path.join(REPO_ROOT, '.tmp', 'screenshots');
const AXE = readFileSync(path.join(REPO_ROOT, 'node_modules/axe-core/axe.min.js'), 'utf8');

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
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
}

/** A fresh browser context and page; `problems` collects script errors and CSP violations. */
export async function newPage(
  browser: Browser,
): Promise<{ context: BrowserContext; page: Page; problems: string[] }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(String(e)));
  return { context, page, problems };
}

export async function logIn(cp: ControlPlane, page: Page, username: string, password = PASSWORD) {
  await page.goto(`${cp.url}/`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

/** Log in, and wait for the overview the dashboard opens on. */
export async function logInToOverview(cp: ControlPlane, page: Page, username: string) {
  await logIn(cp, page, username);
  await page.getByTestId('fleet-sentence').waitFor();
}

/** Follow a link of the page and wait for the heading of the screen it opens. */
export async function openScreen(page: Page, link: string, heading: string | RegExp) {
  await page.getByRole('link', { name: link }).click();
  await page.getByRole('heading', { name: heading }).waitFor();
}

/** axe-core's serious and critical violations on the page as it is now. */
export async function accessibilityProblems(page: Page) {
  // Evaluated through the DevTools protocol: the page's CSP (no inline script) stays as it is.
  await page.evaluate(`${AXE}\n;0`);
  const violations = (await page.evaluate('axe.run().then((r) => r.violations)')) as {
    id: string;
    impact: string;
    help: string;
  }[];
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

export async function shot(page: Page, name: string) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** The page's own session used by hand (a forged request): renew it from the cookie, then call. */
export async function forge(page: Page, method: string, apiPath: string, body?: unknown) {
  return (await page.evaluate(`(async () => {
    const csrf = document.cookie.split('; ').find((c) => c.startsWith('dbb_csrf=')).slice(9);
    const t = await (await fetch('/api/v1/auth/session/refresh', { method: 'POST', headers: { 'x-csrf-token': csrf } })).json();
    const r = await fetch(${JSON.stringify(`/api/v1${apiPath}`)}, {
      method: ${JSON.stringify(method)},
      headers: { authorization: 'Bearer ' + t.accessToken, 'content-type': 'application/json' },
      ${body === undefined ? '' : `body: ${JSON.stringify(JSON.stringify(body))},`}
    });
    return { status: r.status, body: await r.json().catch(() => null) };
  })()`)) as { status: number; body: { detail: string } | null };
}

/** Dashboard users of the given roles, all with PASSWORD. */
export async function addUsers(cp: ControlPlane, users: [string, 'viewer' | 'operator' | 'admin'][]) {
  for (const [username, role] of users) {
    const r = await cp.api('POST', '/api/v1/users', { username, password: PASSWORD, role });
    if (r.status !== 201) throw new Error(`user ${username}: ${r.status} ${JSON.stringify(r.body)}`);
  }
}
