import { type ControlPlane, cleanupAll, query } from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlane } from './support.js';

type Row = {
  id: string;
  at: string;
  actor: string;
  actorId: string | null;
  sourceIp: string | null;
  action: string;
  target: string | null;
  outcome: string;
  status: number;
  hash: string;
};

let cp: ControlPlane;
let viewer: string;
beforeAll(async () => {
  cp = await controlPlane();
  const v = await cp.api<{ token: string }>('POST', '/api/v1/tokens', { name: 'watcher', role: 'viewer' });
  viewer = v.body.token;
});
afterAll(cleanupAll);

const audit = async (q = '') => (await cp.api<{ items: Row[] }>('GET', `/api/v1/audit${q}`)).body.items;
const sqlOn = (text: string) => query(cp.databaseUrl, text);

describe('audit trail', () => {
  it('records mutating calls and refused authentication with actor, source, route, target and outcome', async () => {
    const op = await cp.api<{ id: string; token: string }>('POST', '/api/v1/tokens', {
      name: 'ops',
      role: 'operator',
    });
    expect(op.status).toBe(201);
    expect((await cp.api('DELETE', `/api/v1/tokens/${op.body.id}`)).status).toBe(204);
    expect((await cp.api('GET', '/api/v1/agents', undefined, 'dbb_api_not-a-token')).status).toBe(401);
    expect((await cp.api('POST', '/api/v1/enrollment-tokens', {}, viewer)).status).toBe(403);
    expect((await cp.api('POST', '/api/v1/storage', { kind: 'nope' })).status).toBe(422);
    // A read is not recorded.
    expect((await cp.api('GET', '/api/v1/agents')).status).toBe(200);

    const rows = await audit('?limit=20');
    const find = (action: string, status: number) =>
      rows.find((r) => r.action === action && r.status === status);
    expect(find('POST /api/v1/tokens', 201)).toMatchObject({
      actor: 'token:initial-admin',
      outcome: 'success',
      target: '/api/v1/tokens',
    });
    expect(find('DELETE /api/v1/tokens/:id', 204)).toMatchObject({
      outcome: 'success',
      target: `/api/v1/tokens/${op.body.id}`,
    });
    expect(find('GET /api/v1/agents', 401)).toMatchObject({ actor: 'anonymous', outcome: 'denied' });
    expect(find('POST /api/v1/enrollment-tokens', 403)).toMatchObject({
      actor: 'token:watcher',
      outcome: 'denied',
    });
    expect(find('POST /api/v1/storage', 422)).toMatchObject({ outcome: 'failure' });
    expect(rows.some((r) => r.action === 'GET /api/v1/agents' && r.status === 200)).toBe(false);
    for (const r of rows) expect(r.sourceIp).toMatch(/127\.0\.0\.1/);
    // Newest first, ids strictly decreasing.
    const ids = rows.map((r) => BigInt(r.id));
    expect(ids).toEqual([...ids].sort((a, b) => (a < b ? 1 : -1)));
    // No secret in the trail: bodies are not recorded.
    expect(JSON.stringify(rows)).not.toContain(op.body.token);
  });

  it('the database refuses UPDATE, DELETE and TRUNCATE of the audit table', async () => {
    for (const stmt of [
      "UPDATE audit_log SET actor = 'someone else'",
      'DELETE FROM audit_log',
      'TRUNCATE audit_log',
    ]) {
      await expect(sqlOn(stmt), stmt).rejects.toThrow(/append-only/);
    }
    expect((await audit()).length).toBeGreaterThan(0);
  });

  it('detects a row changed or removed behind the trigger', async () => {
    const ok = await cp.api<{ ok: boolean; rows: number }>('GET', '/api/v1/audit/verify');
    expect(ok.body).toMatchObject({ ok: true });
    expect(ok.body.rows).toBeGreaterThan(3);

    const rows = await audit('?limit=1000');
    const victim = rows[Math.floor(rows.length / 2)] as Row;
    // Someone with the database owner's rights switches the trigger off and edits history.
    await sqlOn(`ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change;
      UPDATE audit_log SET actor = 'token:nobody' WHERE id = ${victim.id};
      ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change;`);
    const changed = await cp.api<{ ok: boolean; brokenAt: string; reason: string }>(
      'GET',
      '/api/v1/audit/verify',
    );
    expect(changed.body).toMatchObject({ ok: false, brokenAt: victim.id });
    expect(changed.body.reason).toMatch(/changed/);

    await sqlOn(`ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change;
      UPDATE audit_log SET actor = '${victim.actor}' WHERE id = ${victim.id};
      ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change;`);
    expect((await cp.api<{ ok: boolean }>('GET', '/api/v1/audit/verify')).body.ok).toBe(true);

    await sqlOn(`ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change;
      DELETE FROM audit_log WHERE id = ${victim.id};
      ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change;`);
    const removed = await cp.api<{ ok: boolean; brokenAt: string; reason: string }>(
      'GET',
      '/api/v1/audit/verify',
    );
    expect(removed.body.ok).toBe(false);
    expect(BigInt(removed.body.brokenAt)).toBeGreaterThan(BigInt(victim.id));
    expect(removed.body.reason).toMatch(/removed/);
  });

  it('exports the whole trail as JSONL or CSV, oldest first, with filters', async () => {
    const all = await audit('?limit=1000');
    const jsonl = await fetch(`${cp.url}/api/v1/audit/export`, {
      headers: { authorization: `Bearer ${cp.adminToken}` },
    });
    expect(jsonl.headers.get('content-type')).toMatch(/ndjson/);
    const lines = (await jsonl.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Row);
    // The export itself is a read; the trail did not grow between the two calls except by refused calls.
    expect(lines.map((l) => l.id)).toEqual(all.map((r) => r.id).reverse());

    const csv = await fetch(`${cp.url}/api/v1/audit/export?format=csv&outcome=denied`, {
      headers: { authorization: `Bearer ${cp.adminToken}` },
    });
    const csvLines = (await csv.text()).trim().split('\n');
    expect(csvLines[0]).toBe('id,at,actor,actorId,sourceIp,action,target,outcome,status,hash');
    expect(csvLines.length - 1).toBe(all.filter((r) => r.outcome === 'denied').length);
    for (const l of csvLines.slice(1)) expect(l).toContain('"denied"');
  });

  it('is admin-only and refuses bad filters with problem+json', async () => {
    expect((await cp.api('GET', '/api/v1/audit', undefined, viewer)).status).toBe(403);
    expect((await cp.api('GET', '/api/v1/audit/export', undefined, viewer)).status).toBe(403);
    for (const q of ['?outcome=maybe', '?limit=0', '?since=yesterday', '?before=abc', '?format=xml']) {
      const r = await cp.api<{ detail: string }>(
        'GET',
        `/api/v1/audit${q.startsWith('?format') ? '/export' : ''}${q}`,
      );
      expect(r.status, q).toBe(400);
      expect(r.headers.get('content-type'), q).toMatch(/problem\+json/);
    }
  });
});
