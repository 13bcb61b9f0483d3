import { randomUUID } from 'node:crypto';
import { type ControlPlane, cleanupAll, query } from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PERMISSIONS, PUBLIC_ROUTES } from '../control-plane/src/http/permissions.js';
import { controlPlane } from './support.js';

type Role = 'viewer' | 'operator' | 'admin';
const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

let cp: ControlPlane;
const tokens = {} as Record<Role, string>;
let operatorUser: { id: string; username: string; password: string };

async function login(username: string, password: string) {
  return cp.api<{ accessToken: string; refreshToken: string; expiresIn: number; detail?: string }>(
    'POST',
    '/api/v1/auth/login',
    { username, password },
    null,
  );
}

beforeAll(async () => {
  cp = await controlPlane({
    env: {
      DBBACKUP_LOGIN_MAX_FAILURES: '3',
      DBBACKUP_LOGIN_LOCKOUT_SECONDS: '2',
      DBBACKUP_LOGIN_RATE_LIMIT_PER_MINUTE: '30',
    },
  });
  tokens.admin = cp.adminToken;
  for (const role of ['operator', 'viewer'] as const) {
    const r = await cp.api<{ token: string }>('POST', '/api/v1/tokens', { name: `${role}-token`, role });
    tokens[role] = r.body.token;
  }
  operatorUser = { id: '', username: 'olga', password: 'correct horse battery staple' };
  const u = await cp.api<{ id: string }>('POST', '/api/v1/users', {
    username: operatorUser.username,
    password: operatorUser.password,
    role: 'operator',
  });
  expect(u.status).toBe(201);
  operatorUser.id = u.body.id;
});
afterAll(cleanupAll);

/** A concrete request for a permission row: ids are fresh UUIDs, bodies empty. */
function requestFor(route: string) {
  const [method, pattern] = route.split(' ') as [string, string];
  const path = pattern.replace(/:key\b/, 'pg-5432-nope').replace(/:(\w+)/g, () => randomUUID());
  return { method, path, body: method === 'GET' || method === 'DELETE' ? undefined : {} };
}

describe('roles', () => {
  it('walks every route with every role: allowed below the line, 403 above it', async () => {
    const rows = Object.entries(PERMISSIONS) as [string, Role][];
    expect(rows.length).toBeGreaterThan(50);
    const wrong: string[] = [];
    for (const [route, need] of rows) {
      for (const role of ['viewer', 'operator', 'admin'] as Role[]) {
        const { method, path, body } = requestFor(route);
        const r = await cp.api(method, path, body, tokens[role]);
        const allowed = RANK[role] >= RANK[need];
        if (allowed ? r.status === 403 || r.status === 401 : r.status !== 403) {
          wrong.push(`${route} as ${role}: ${r.status} (needs ${need})`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it('applies the same table to a logged-in user as to an API token', async () => {
    const { body } = await login(operatorUser.username, operatorUser.password);
    for (const [route, need] of Object.entries(PERMISSIONS) as [string, Role][]) {
      const { method, path, body: b } = requestFor(route);
      const r = await cp.api(method, path, b, body.accessToken);
      expect(r.status === 403, `${route}: ${r.status}`).toBe(RANK.operator < RANK[need]);
    }
  });

  it('records what a logged-in user creates under that user (enrolment token, command)', async () => {
    const { body } = await login(operatorUser.username, operatorUser.password);
    const r = await cp.api<{ token: string }>('POST', '/api/v1/enrollment-tokens', {}, body.accessToken);
    expect(r.status).toBe(201);
    const rows = await query<{ created_by: string }>(
      cp.databaseUrl,
      "SELECT created_by::text FROM enrollment_tokens WHERE token_hash = encode(sha256($1::bytea), 'hex')",
      [r.body.token],
    );
    expect(rows).toEqual([{ created_by: operatorUser.id }]);
  });

  it('every route answers 401 without credentials, except the public ones', async () => {
    for (const route of Object.keys(PERMISSIONS)) {
      const { method, path, body } = requestFor(route);
      expect((await cp.api(method, path, body, null)).status, route).toBe(401);
    }
    expect(PUBLIC_ROUTES).toContain('POST /api/v1/auth/login');
  });
});

describe('user management', () => {
  it('refuses bad input with problem+json and changes nothing', async () => {
    const count = async () =>
      (
        await query<{ n: number; h: string }>(
          cp.databaseUrl,
          "SELECT count(*)::int AS n, string_agg(password_hash || role || coalesce(disabled_at::text, ''), ',' ORDER BY id) AS h FROM users",
        )
      )[0];
    const before = await count();
    const me = (await cp.api<{ id: string }>('GET', '/api/v1/auth/me')).body.id;
    for (const [what, method, p, body, status] of [
      ['short password', 'POST', '/api/v1/users', { username: 'x1', password: 'short', role: 'viewer' }, 422],
      [
        'bad name',
        'POST',
        '/api/v1/users',
        { username: 'a b', password: 'long enough password', role: 'viewer' },
        422,
      ],
      [
        'bad role',
        'POST',
        '/api/v1/users',
        { username: 'x2', password: 'long enough password', role: 'root' },
        422,
      ],
      [
        'duplicate',
        'POST',
        '/api/v1/users',
        { username: 'olga', password: 'long enough password', role: 'viewer' },
        409,
      ],
      ['unknown field', 'PATCH', `/api/v1/users/${operatorUser.id}`, { admin: true }, 422],
      ['not a uuid', 'PATCH', '/api/v1/users/olga', { role: 'viewer' }, 404],
      ['unknown user', 'DELETE', '/api/v1/users/00000000-0000-4000-8000-000000000000', undefined, 404],
      ['malformed JSON', 'POST', '/api/v1/users', '{"username":', 400],
      ['login without body', 'POST', '/api/v1/auth/login', {}, 422],
      ['refresh with junk', 'POST', '/api/v1/auth/refresh', { refreshToken: 'junk' }, 401],
      ['logout without token', 'POST', '/api/v1/auth/logout', {}, 422],
      [
        'token expiring in 0 days',
        'POST',
        '/api/v1/tokens',
        { name: 't', role: 'viewer', expiresInDays: 0 },
        422,
      ],
    ] as const) {
      const r = await cp.api<{ detail: string }>(
        method,
        p,
        body,
        /^(login|refresh|logout)/.test(what) ? null : undefined,
      );
      expect(r.status, what).toBe(status);
      expect(r.headers.get('content-type'), what).toMatch(/problem\+json/);
      expect(r.body.detail, what).toBeTruthy();
    }
    // An API token is not a user: its id names no user.
    expect((await cp.api('DELETE', `/api/v1/users/${me}`)).status).toBe(404);
    // A user may not delete, disable or demote itself.
    const self = await login(operatorUser.username, operatorUser.password);
    await cp.api('PATCH', `/api/v1/users/${operatorUser.id}`, { role: 'admin' });
    const asSelf = await login(operatorUser.username, operatorUser.password);
    expect(
      (await cp.api('DELETE', `/api/v1/users/${operatorUser.id}`, undefined, asSelf.body.accessToken)).status,
    ).toBe(409);
    expect(
      (await cp.api('PATCH', `/api/v1/users/${operatorUser.id}`, { disabled: true }, asSelf.body.accessToken))
        .status,
    ).toBe(409);
    await cp.api('PATCH', `/api/v1/users/${operatorUser.id}`, { role: 'operator' });
    expect(self.status).toBe(200);
    // The role went up and back down; nothing else changed.
    expect(await count()).toEqual(before);
  });
});

describe('login', () => {
  it('returns a short-lived access token and a refresh token that works once', async () => {
    const r = await login(operatorUser.username, operatorUser.password);
    expect(r.status).toBe(200);
    expect(r.body.expiresIn).toBe(900);
    const me = await cp.api<{ name: string; role: string; kind: string }>(
      'GET',
      '/api/v1/auth/me',
      undefined,
      r.body.accessToken,
    );
    expect(me.body).toMatchObject({ name: 'olga', role: 'operator', kind: 'user' });

    const next = await cp.api<{ accessToken: string; refreshToken: string }>(
      'POST',
      '/api/v1/auth/refresh',
      { refreshToken: r.body.refreshToken },
      null,
    );
    expect(next.status).toBe(200);
    expect(next.body.refreshToken).not.toBe(r.body.refreshToken);
    // The old refresh token again: treated as stolen, every session of the user ends.
    const reuse = await cp.api<{ detail: string }>(
      'POST',
      '/api/v1/auth/refresh',
      { refreshToken: r.body.refreshToken },
      null,
    );
    expect(reuse.status).toBe(401);
    expect(reuse.body.detail).toMatch(/already used/);
    const after = await cp.api(
      'POST',
      '/api/v1/auth/refresh',
      { refreshToken: next.body.refreshToken },
      null,
    );
    expect(after.status).toBe(401);
    // Neither the password nor any token of the session is in the control plane's log.
    const log = cp.proc.lines.join('\n');
    for (const secret of [
      operatorUser.password,
      r.body.refreshToken,
      r.body.accessToken,
      next.body.refreshToken,
    ]) {
      expect(log).not.toContain(secret);
    }
    expect(cp.proc.lines.length).toBeGreaterThan(5);
    // Passwords are stored as scrypt hashes.
    const rows = await query<{ password_hash: string }>(cp.databaseUrl, 'SELECT password_hash FROM users');
    for (const row of rows) {
      expect(row.password_hash).toMatch(/^scrypt\$32768\$8\$1\$/);
      expect(row.password_hash).not.toContain(operatorUser.password);
    }
  });

  it('refuses a wrong password, a disabled user, an expired API token and a forged access token', async () => {
    const bad = await login(operatorUser.username, 'not the password at all');
    expect(bad.status).toBe(401);
    expect(bad.body.detail).toBe('invalid username or password');
    expect((await login('nobody-here', 'whatever whatever')).body.detail).toBe(
      'invalid username or password',
    );

    const good = await login(operatorUser.username, operatorUser.password);
    await cp.api('PATCH', `/api/v1/users/${operatorUser.id}`, { disabled: true });
    expect((await cp.api('GET', '/api/v1/agents', undefined, good.body.accessToken)).status).toBe(401);
    expect((await login(operatorUser.username, operatorUser.password)).status).toBe(401);
    await cp.api('PATCH', `/api/v1/users/${operatorUser.id}`, { disabled: false });

    const t = await cp.api<{ id: string; token: string; expiresAt: string }>('POST', '/api/v1/tokens', {
      name: 'short',
      role: 'viewer',
      expiresInDays: 1,
    });
    expect(new Date(t.body.expiresAt).getTime()).toBeGreaterThan(Date.now());
    expect((await cp.api('GET', '/api/v1/agents', undefined, t.body.token)).status).toBe(200);
    await query(
      cp.databaseUrl,
      `UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = $1`,
      [t.body.id],
    );
    const expired = await cp.api<{ detail: string }>('GET', '/api/v1/agents', undefined, t.body.token);
    expect(expired.status).toBe(401);
    expect(expired.body.detail).toMatch(/expired/);

    const [h, p] = good.body.accessToken.split('.') as [string, string];
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), role: 'admin' })).toString('base64url')}.AAAA`;
    expect((await cp.api('GET', '/api/v1/users', undefined, forged)).status).toBe(401);
  });

  it('locks an account after repeated failures, for the configured time', async () => {
    for (let i = 0; i < 3; i++)
      expect((await login(operatorUser.username, `wrong password ${i}`)).status).toBe(401);
    const locked = await login(operatorUser.username, operatorUser.password);
    expect(locked.status).toBe(429);
    expect(locked.headers.get('retry-after')).toMatch(/^[12]$/);
    await new Promise((r) => setTimeout(r, 2100));
    expect((await login(operatorUser.username, operatorUser.password)).status).toBe(200);
    // The failures and the lock are in the audit trail, with the user name tried.
    const audit = await cp.api<{
      items: { action: string; outcome: string; detail: { username?: string; locked?: boolean } }[];
    }>('GET', '/api/v1/audit?action=POST%20/api/v1/auth/login&limit=50');
    expect(
      audit.body.items.some((r) => r.outcome === 'denied' && r.detail.locked && r.detail.username === 'olga'),
    ).toBe(true);
    expect(audit.body.items.some((r) => r.outcome === 'success' && r.detail.username === 'olga')).toBe(true);
  });

  it('rate-limits login attempts per source address', async () => {
    let limited: Awaited<ReturnType<typeof login>> | undefined;
    for (let i = 0; i < 40 && !limited; i++) {
      const r = await login('nobody-here', 'whatever whatever');
      if (r.status === 429) limited = r;
    }
    expect(limited?.status).toBe(429);
    expect(Number(limited?.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});
