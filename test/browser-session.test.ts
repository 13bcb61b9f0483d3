import { type ControlPlane, cleanupAll } from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlane } from './support.js';

/**
 * Browser sessions of the web dashboard, driven from the hostile side over plain HTTP:
 * the refresh token only in an HttpOnly SameSite=Strict cookie, the CSRF token required on
 * every cookie-authenticated call, logout ending the session on the server.
 */

let cp: ControlPlane;
const PASSWORD = 'correct horse battery staple';

type Jar = { refresh: string; csrf: string; setCookies: string[] };

function jar(res: Response): Jar {
  const setCookies = res.headers.getSetCookie();
  const value = (name: string) => {
    const c = setCookies.find((x) => x.startsWith(`${name}=`));
    return c ? (c.split(';')[0] ?? '').slice(name.length + 1) : '';
  };
  return { refresh: value('dbb_refresh'), csrf: value('dbb_csrf'), setCookies };
}

async function post(path: string, o: { body?: unknown; cookie?: string; csrf?: string } = {}) {
  return fetch(`${cp.url}${path}`, {
    method: 'POST',
    headers: {
      ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(o.cookie ? { cookie: o.cookie } : {}),
      ...(o.csrf !== undefined ? { 'x-csrf-token': o.csrf } : {}),
    },
    ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
  });
}

async function login(username: string) {
  const res = await post('/api/v1/auth/session', { body: { username, password: PASSWORD } });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { accessToken: string; csrfToken: string; refreshToken?: string };
  return { res, body, jar: jar(res) };
}

const cookieOf = (j: Jar) => `dbb_refresh=${j.refresh}; dbb_csrf=${j.csrf}`;

beforeAll(async () => {
  cp = await controlPlane();
  for (const [username, role] of [
    ['ada', 'operator'],
    ['bob', 'viewer'],
  ])
    expect((await cp.api('POST', '/api/v1/users', { username, password: PASSWORD, role })).status).toBe(201);
}, 120_000);

afterAll(async () => {
  await cleanupAll();
});

describe('browser sessions (the dashboard)', () => {
  it('logs in into cookies: the refresh token HttpOnly, SameSite=Strict, scoped to the session routes, never in the body', async () => {
    const { body, jar: j } = await login('ada');
    expect(body.refreshToken).toBeUndefined();
    expect(body.accessToken).toBeTruthy();
    const refresh = j.setCookies.find((c) => c.startsWith('dbb_refresh='))!;
    expect(refresh).toMatch(/HttpOnly/i);
    expect(refresh).toMatch(/SameSite=Strict/i);
    expect(refresh).toMatch(/Path=\/api\/v1\/auth\/session/);
    const csrf = j.setCookies.find((c) => c.startsWith('dbb_csrf='))!;
    expect(csrf).not.toMatch(/HttpOnly/i);
    expect(csrf).toMatch(/SameSite=Strict/i);
    expect(j.csrf).toBe(body.csrfToken);
    // The access token works as a bearer token, and only as that.
    const me = await fetch(`${cp.url}/api/v1/auth/me`, {
      headers: { authorization: `Bearer ${body.accessToken}` },
    });
    expect(me.status).toBe(200);
    const byCookie = await fetch(`${cp.url}/api/v1/auth/me`, { headers: { cookie: cookieOf(j) } });
    expect(byCookie.status).toBe(401);
  });

  it('a wrong password is refused with problem+json and sets no cookie', async () => {
    const res = await post('/api/v1/auth/session', { body: { username: 'ada', password: 'wrong password' } });
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toMatch(/problem\+json/);
    expect(((await res.json()) as { detail: string }).detail).toContain('invalid username or password');
    expect(res.headers.getSetCookie()).toEqual([]);
  });

  it('refresh and logout by cookie need the CSRF token of that session: without it, or with another, nothing changes', async () => {
    const a = (await login('ada')).jar;
    const b = (await login('bob')).jar;
    for (const [what, csrf] of [
      ['no header', undefined],
      ['empty', ''],
      ['another session’s', b.csrf],
      ['made up', 'A'.repeat(43)],
    ] as const) {
      for (const path of ['/api/v1/auth/session/refresh', '/api/v1/auth/session/logout']) {
        const res = await post(path, { cookie: cookieOf(a), ...(csrf !== undefined ? { csrf } : {}) });
        expect(res.status, `${path} with ${what}`).toBe(403);
        expect(res.headers.get('content-type')).toMatch(/problem\+json/);
        expect(res.headers.getSetCookie()).toEqual([]);
      }
    }
    // The session was not used up nor ended by any of those: it renews once, with its own token.
    const ok = await post('/api/v1/auth/session/refresh', { cookie: cookieOf(a), csrf: a.csrf });
    expect(ok.status).toBe(200);
    const next = jar(ok);
    expect(next.refresh).not.toBe(a.refresh);
    expect(((await ok.json()) as { user: { username: string } }).user.username).toBe('ada');
    // Without a cookie there is no session to renew.
    expect((await post('/api/v1/auth/session/refresh', { csrf: next.csrf })).status).toBe(401);
  });

  it('logout ends the session on the server: its refresh cookie no longer works', async () => {
    const { jar: j } = await login('bob');
    const out = await post('/api/v1/auth/session/logout', { cookie: cookieOf(j), csrf: j.csrf });
    expect(out.status).toBe(204);
    expect(out.headers.getSetCookie().some((c) => /^dbb_refresh=;/.test(c) || /Max-Age=0/i.test(c))).toBe(
      true,
    );
    const again = await post('/api/v1/auth/session/refresh', { cookie: cookieOf(j), csrf: j.csrf });
    expect(again.status).toBe(401);
  });

  it('serves the dashboard with a strict Content-Security-Policy and immutable hashed assets', async () => {
    const page = await fetch(`${cp.url}/`);
    expect(page.status).toBe(200);
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(page.headers.get('cache-control')).toBe('no-cache');
    const html = await page.text();
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(asset, html).toBeTruthy();
    // Everything the page loads comes from this origin.
    expect(html).not.toMatch(/https?:\/\//);
    const js = await fetch(`${cp.url}${asset}`);
    expect(js.status).toBe(200);
    expect(js.headers.get('cache-control')).toContain('immutable');
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    for (const bad of ['/assets/..%2Fpackage.json', '/assets/nope.js', '/assets/x.exe'])
      expect((await fetch(`${cp.url}${bad}`)).status, bad).toBe(404);
  });
});
