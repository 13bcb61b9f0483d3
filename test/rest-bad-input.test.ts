import { randomUUID } from 'node:crypto';
import { type ControlPlane, cleanupAll, query } from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlane, rawIdentity } from './support.js';

let cp: ControlPlane;
let viewer: string;
let operator: string;
let agentId: string;
beforeAll(async () => {
  cp = await controlPlane();
  viewer = (await cp.api<{ token: string }>('POST', '/api/v1/tokens', { name: 'v', role: 'viewer' })).body
    .token;
  operator = (await cp.api<{ token: string }>('POST', '/api/v1/tokens', { name: 'o', role: 'operator' })).body
    .token;
  agentId = (await rawIdentity(cp)).agentId;
});
afterAll(cleanupAll);

type Case = [
  name: string,
  method: string,
  path: string,
  body: unknown,
  token: 'admin' | 'viewer' | 'operator' | 'none' | 'bogus',
  status: number,
];

const cases = (): Case[] => [
  ['invalid JSON', 'POST', '/api/v1/tokens', '{"name":', 'admin', 400],
  ['a body that is not an object', 'POST', '/api/v1/tokens', '[1,2]', 'admin', 422],
  ['wrong types', 'POST', '/api/v1/tokens', { name: 42, role: 'admin' }, 'admin', 422],
  ['an unknown role', 'POST', '/api/v1/tokens', { name: 'x', role: 'root' }, 'admin', 422],
  ['an out-of-range TTL', 'POST', '/api/v1/enrollment-tokens', { ttlSeconds: -5 }, 'admin', 422],
  [
    'an unknown command kind',
    'POST',
    `/api/v1/agents/${agentId}/commands`,
    { command: { kind: 'rm' } },
    'admin',
    422,
  ],
  [
    'a command for an unknown agent',
    'POST',
    `/api/v1/agents/${randomUUID()}/commands`,
    { command: { kind: 'ping' } },
    'admin',
    404,
  ],
  ['an unknown agent id', 'GET', `/api/v1/agents/${randomUUID()}`, undefined, 'admin', 404],
  ['a malformed agent id', 'GET', "/api/v1/agents/1'%20OR%201=1", undefined, 'admin', 404],
  ['an unknown command id', 'GET', `/api/v1/commands/${randomUUID()}`, undefined, 'admin', 404],
  ['revoking an unknown agent', 'DELETE', `/api/v1/agents/${randomUUID()}`, undefined, 'admin', 404],
  ['an unknown route', 'GET', '/api/v1/nothing-here', undefined, 'admin', 404],
  ['a missing token', 'GET', '/api/v1/agents', undefined, 'none', 401],
  ['a bogus token', 'GET', '/api/v1/agents', undefined, 'bogus', 401],
  ['a viewer creating a token', 'POST', '/api/v1/tokens', { name: 'x', role: 'admin' }, 'viewer', 403],
  ['an operator creating a token', 'POST', '/api/v1/tokens', { name: 'x', role: 'admin' }, 'operator', 403],
  ['a viewer creating an enrolment token', 'POST', '/api/v1/enrollment-tokens', {}, 'viewer', 403],
  [
    'a viewer sending a command',
    'POST',
    `/api/v1/agents/${agentId}/commands`,
    { command: { kind: 'ping' } },
    'viewer',
    403,
  ],
  ['a viewer revoking an agent', 'DELETE', `/api/v1/agents/${agentId}`, undefined, 'viewer', 403],
  [
    'an enrolment with a missing key',
    'POST',
    '/api/v1/agents/enroll',
    { token: 'x', hostname: 'h', agentVersion: '1' },
    'none',
    422,
  ],
  [
    'an oversized body',
    'POST',
    '/api/v1/tokens',
    JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024), role: 'viewer' }),
    'admin',
    413,
  ],
];

describe('REST bad input', () => {
  it('answers every case with problem+json and the right 4xx, and changes nothing', async () => {
    const snapshot = async () =>
      query(
        cp.databaseUrl,
        "SELECT (SELECT count(*) FROM api_tokens) a, (SELECT count(*) FROM enrollment_tokens) e, (SELECT count(*) FROM commands) c, (SELECT string_agg(status, ',') FROM agents) s",
      );
    const before = await snapshot();
    for (const [name, method, path, body, who, status] of cases()) {
      const token =
        who === 'admin'
          ? undefined
          : who === 'viewer'
            ? viewer
            : who === 'operator'
              ? operator
              : who === 'bogus'
                ? 'dbb_api_bogus'
                : null;
      const r = await cp.api<{ status: number; title: string; detail: string; type: string }>(
        method,
        path,
        body,
        token,
      );
      expect.soft(r.status, name).toBe(status);
      expect.soft(r.headers.get('content-type'), name).toContain('application/problem+json');
      expect.soft(r.body.status, name).toBe(status);
      expect.soft(typeof r.body.detail, name).toBe('string');
      expect.soft(r.body.type, name).toMatch(/^https:\/\//);
    }
    expect(await snapshot()).toEqual(before);
  });

  it('answers bad input to the backup endpoints with problem+json 4xx, changing nothing', async () => {
    const local = await cp.api<{ id: string }>('POST', '/api/v1/storage', {
      kind: 'local',
      name: 'bad-input-disk',
      directory: '/tmp/dbb-bad-input',
    });
    expect(local.status).toBe(201);
    const snapshot = async () =>
      query(
        cp.databaseUrl,
        'SELECT (SELECT count(*) FROM storage_profiles) s, (SELECT count(*) FROM targets) t, (SELECT count(*) FROM jobs) j, (SELECT count(*) FROM backups) b',
      );
    const before = await snapshot();
    const target = {
      engine: 'postgresql',
      name: 'x',
      connection: { database: 'd' },
      storageId: local.body.id,
    };
    const cases: [string, string, string, unknown, string | undefined, number][] = [
      ['an unknown storage kind', 'POST', '/api/v1/storage', { kind: 'ftp', name: 'x' }, undefined, 422],
      [
        'a relative local directory',
        'POST',
        '/api/v1/storage',
        { kind: 'local', name: 'x', directory: 'rel/dir' },
        undefined,
        422,
      ],
      [
        'an S3 bucket name too short',
        'POST',
        '/api/v1/storage',
        { kind: 's3', name: 'x', bucket: 'ab' },
        undefined,
        422,
      ],
      [
        'a duplicate storage name',
        'POST',
        '/api/v1/storage',
        { kind: 'local', name: 'bad-input-disk', directory: '/tmp/x' },
        undefined,
        409,
      ],
      [
        'an operator creating storage',
        'POST',
        '/api/v1/storage',
        { kind: 'local', name: 'y', directory: '/tmp/y' },
        operator,
        403,
      ],
      [
        'rescanning a local profile',
        'POST',
        `/api/v1/storage/${local.body.id}/rescan`,
        undefined,
        undefined,
        409,
      ],
      [
        'a target for an unknown agent',
        'POST',
        `/api/v1/agents/${randomUUID()}/targets`,
        target,
        undefined,
        404,
      ],
      ['a target for an offline agent', 'POST', `/api/v1/agents/${agentId}/targets`, target, undefined, 409],
      [
        'a target with a password field',
        'POST',
        `/api/v1/agents/${agentId}/targets`,
        { ...target, connection: { database: 'd', password: 'x' } },
        undefined,
        422,
      ],
      [
        'a target with a shell in its name',
        'POST',
        `/api/v1/agents/${agentId}/targets`,
        { ...target, name: 'x; rm -rf /' },
        undefined,
        422,
      ],
      [
        'a backup of an unknown target',
        'POST',
        `/api/v1/targets/${randomUUID()}/backups`,
        undefined,
        undefined,
        404,
      ],
      [
        'a restore of an unknown backup',
        'POST',
        `/api/v1/backups/${randomUUID()}/restore`,
        { database: 'x' },
        undefined,
        404,
      ],
      [
        'a restore with an unknown policy',
        'POST',
        `/api/v1/backups/${randomUUID()}/restore`,
        { database: 'x', conflict: 'overwrite' },
        undefined,
        422,
      ],
      [
        'a verify of an unknown backup',
        'POST',
        `/api/v1/backups/${randomUUID()}/verify`,
        undefined,
        undefined,
        404,
      ],
      ['an unknown job', 'GET', `/api/v1/jobs/${randomUUID()}`, undefined, undefined, 404],
      ['the logs of an unknown job', 'GET', `/api/v1/jobs/${randomUUID()}/logs`, undefined, undefined, 404],
      [
        'a viewer exporting the key-encryption key',
        'POST',
        '/api/v1/keys/kek/export',
        undefined,
        viewer,
        403,
      ],
    ];
    for (const [name, method, path, body, token, status] of cases) {
      const r = await cp.api<{ status: number }>(method, path, body, token);
      expect.soft(r.status, name).toBe(status);
      expect.soft(r.headers.get('content-type'), name).toContain('application/problem+json');
    }
    expect(await snapshot()).toEqual(before);
  });

  it('a wrong content type is refused with 415', async () => {
    const res = await fetch(`${cp.url}/api/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${cp.adminToken}`, 'content-type': 'text/plain' },
      body: '{"name":"x","role":"viewer"}',
    });
    expect(res.status).toBe(415);
  });

  it('lists the validation issues by field', async () => {
    const r = await cp.api<{ errors: { path: string }[] }>('POST', '/api/v1/tokens', {
      name: '',
      role: 'nope',
    });
    expect(r.status).toBe(422);
    expect(r.body.errors.map((e) => e.path).sort()).toEqual(['name', 'role']);
  });

  it('a revoked API token stops working at once', async () => {
    const t = (
      await cp.api<{ id: string; token: string }>('POST', '/api/v1/tokens', { name: 'tmp', role: 'viewer' })
    ).body;
    expect((await cp.api('GET', '/api/v1/agents', undefined, t.token)).status).toBe(200);
    expect((await cp.api('DELETE', `/api/v1/tokens/${t.id}`)).status).toBe(204);
    expect((await cp.api('GET', '/api/v1/agents', undefined, t.token)).status).toBe(401);
  });

  it('healthz and readyz answer', async () => {
    expect((await fetch(`${cp.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${cp.url}/readyz`)).status).toBe(200);
  });
});
