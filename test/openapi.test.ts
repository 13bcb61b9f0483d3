import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type ControlPlane, cleanupAll, startAgent, trackDir, waitFor } from '@dbbackup/testkit';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitJob } from './backup-support.js';
import { controlPlane, getAgent } from './support.js';

/**
 * Real answers of a live control plane, through a whole backup → verify →
 * restore → schedules → users → key rotation walk, each checked against the
 * schema the OpenAPI document gives for its route and status (problem+json
 * for errors included).
 */
let cp: ControlPlane;
let doc: {
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, unknown> }> }>>;
};
const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
const checked: string[] = [];
let work: string;

const pointer = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

/** Call `method template` with params filled in and check the answer against the document. */
async function call<T = Record<string, unknown>>(
  method: string,
  template: string,
  params: Record<string, string> = {},
  body?: unknown,
  token?: string | null,
) {
  const p = template.replace(/\{(\w+)\}/g, (_, k: string) => params[k] ?? '');
  const r = await cp.api<T>(method, p, body, token);
  const op = doc.paths[template.split('?')[0] as string]?.[method.toLowerCase()];
  expect(op, `${method} ${template} is documented`).toBeDefined();
  const resp = op?.responses[String(r.status)];
  expect(resp, `${method} ${template} documents status ${r.status}`).toBeDefined();
  if (r.status !== 204) {
    const type = (r.headers.get('content-type') ?? '').split(';')[0] as string;
    expect(resp?.content?.[type], `${method} ${template} ${r.status} documents ${type}`).toBeDefined();
    const ref = `doc#/paths/${pointer(template.split('?')[0] as string)}/${method.toLowerCase()}/responses/${r.status}/content/${pointer(type)}/schema`;
    const validate = ajv.getSchema(ref.replace(/\{/g, '%7B').replace(/\}/g, '%7D'));
    expect(validate, ref).toBeDefined();
    const ok = validate?.(r.body);
    expect(
      ok,
      `${method} ${template} ${r.status}: ${JSON.stringify(validate?.errors)}\n${JSON.stringify(r.body)}`,
    ).toBe(true);
  }
  checked.push(`${method} ${template} ${r.status}`);
  return r;
}

beforeAll(async () => {
  cp = await controlPlane();
  const res = await fetch(`${cp.url}/api/v1/openapi.json`);
  expect(res.status).toBe(200);
  doc = (await res.json()) as typeof doc;
  ajv.addSchema(doc as object, 'doc');
  work = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-openapi-')));
});
afterAll(cleanupAll);

describe('OpenAPI', () => {
  it('serves an interactive page that works offline', async () => {
    const page = await fetch(`${cp.url}/docs`);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toContain('/api/v1/openapi.json');
    const js = await fetch(`${cp.url}/docs/swagger-ui-bundle.js`);
    expect(js.status).toBe(200);
    expect((await js.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
    expect((await fetch(`${cp.url}/docs/..%2F..%2Fpackage.json`)).status).toBe(404);
  });

  it('real answers of a whole walk through the API match the document', async () => {
    const agent = await startAgent(cp);
    await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
    await call('GET', '/api/v1/agents');
    await call('GET', '/api/v1/agents/{id}', { id: agent.id });
    await call('GET', '/api/v1/agents/{id}', { id: '00000000-0000-4000-8000-000000000000' });
    const s = await call<{ id: string }>(
      'POST',
      '/api/v1/storage',
      {},
      {
        kind: 'local',
        name: 'disk',
        directory: path.join(work, 'b'),
      },
    );
    await call('POST', '/api/v1/storage', {}, { kind: 'nope' });
    await call('GET', '/api/v1/storage');
    await call('GET', '/api/v1/storage/{id}', { id: s.body.id });
    const db = path.join(work, 'app.db');
    execFileSync('sqlite3', [db, 'CREATE TABLE t(v); INSERT INTO t VALUES (1),(2);']);
    const t = await call<{ id: string }>(
      'POST',
      '/api/v1/agents/{id}/targets',
      { id: agent.id },
      {
        engine: 'sqlite',
        name: 'app',
        connection: { path: db },
        storageId: s.body.id,
      },
    );
    await call('GET', '/api/v1/targets');
    await call('GET', '/api/v1/agents/{id}/targets', { id: agent.id });
    await call('GET', '/api/v1/targets/{id}', { id: t.body.id });
    const job = await call<{ id: string }>('POST', '/api/v1/targets/{id}/backups', { id: t.body.id });
    await waitJob(cp, job.body.id);
    const j = await call<{ result: { backupId: string } }>('GET', '/api/v1/jobs/{id}', { id: job.body.id });
    await call('GET', '/api/v1/jobs');
    await call('GET', '/api/v1/jobs/{id}/logs', { id: job.body.id });
    await call('GET', '/api/v1/backups');
    await call('GET', '/api/v1/backups/{id}', { id: j.body.result.backupId });
    const v = await call<{ id: string }>('POST', '/api/v1/backups/{id}/verify', {
      id: j.body.result.backupId,
    });
    await waitJob(cp, v.body.id);
    await call('GET', '/api/v1/jobs/{id}', { id: v.body.id });
    const rs = await call<{ id: string }>(
      'POST',
      '/api/v1/backups/{id}/restore',
      { id: j.body.result.backupId },
      {
        database: path.join(work, 'copy.db'),
      },
    );
    await waitJob(cp, rs.body.id);
    await call(
      'POST',
      '/api/v1/backups/{id}/restore',
      { id: j.body.result.backupId },
      { conflict: 'sometimes' },
    );
    const sc = await call<{ id: string }>(
      'POST',
      '/api/v1/targets/{id}/schedules',
      { id: t.body.id },
      { cron: '0 3 * * *' },
    );
    await call('GET', '/api/v1/targets/{id}/schedules', { id: t.body.id });
    await call('GET', '/api/v1/targets/{id}/schedules/{scheduleId}', {
      id: t.body.id,
      scheduleId: sc.body.id,
    });
    await call(
      'PATCH',
      '/api/v1/targets/{id}/schedules/{scheduleId}',
      { id: t.body.id, scheduleId: sc.body.id },
      { enabled: false },
    );
    await call('GET', '/api/v1/targets/{id}/health', { id: t.body.id });
    await call('GET', '/api/v1/alerts');
    await call('POST', '/api/v1/enrollment-tokens', {}, {});
    const u = await call<{ id: string }>(
      'POST',
      '/api/v1/users',
      {},
      {
        username: 'ann',
        password: 'a password long enough',
        role: 'viewer',
      },
    );
    await call('GET', '/api/v1/users');
    await call('PATCH', '/api/v1/users/{id}', { id: u.body.id }, { role: 'operator' });
    const login = await call<{ accessToken: string; refreshToken: string }>(
      'POST',
      '/api/v1/auth/login',
      {},
      {
        username: 'ann',
        password: 'a password long enough',
      },
      null,
    );
    await call('POST', '/api/v1/auth/login', {}, { username: 'ann', password: 'wrong' }, null);
    await call('POST', '/api/v1/auth/refresh', {}, { refreshToken: login.body.refreshToken }, null);
    await call('GET', '/api/v1/auth/me', {}, undefined, login.body.accessToken);
    await call(
      'POST',
      '/api/v1/users',
      {},
      { username: 'x', password: 'y', role: 'viewer' },
      login.body.accessToken,
    );
    const rot = await call<{ id: string }>('POST', '/api/v1/keys/kek/rotate');
    await call('GET', '/api/v1/keys/rotations/{id}', { id: rot.body.id });
    await call('GET', '/api/v1/keys/rotations');
    await call('GET', '/api/v1/audit');
    await call('DELETE', '/api/v1/targets/{id}/schedules/{scheduleId}', {
      id: t.body.id,
      scheduleId: sc.body.id,
    });
    expect(checked.length).toBeGreaterThan(40);
    // Error answers were among them: 401, 403, 404, 422 problem+json all validated.
    for (const code of [' 401', ' 403', ' 404', ' 422'])
      expect(
        checked.some((c) => c.endsWith(code)),
        code,
      ).toBe(true);
  });
});
