import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type Agent,
  type ControlPlane,
  cleanupAll,
  query,
  REPO_ROOT,
  startAgent,
  trackDir,
  waitFor,
} from '@dbbackup/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbUrl, runBackup, smallPgTarget, waitJob } from './backup-support.js';
import { controlPlane, getAgent } from './support.js';

let cp: ControlPlane;
let agent: Agent;
let store: string;
let targetId: string;
let storageId: string;
const backupIds: string[] = [];

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)],
  );
}
const dataObjects = () => walk(store).filter((f) => !f.endsWith('.meta.json'));
const metaFiles = () => walk(store).filter((f) => f.endsWith('.meta.json'));
const fingerprintFile = (f: string) =>
  `${createHash('sha256').update(readFileSync(f)).digest('hex')} ${statSync(f).mtimeMs}`;

function cli(args: string[]) {
  return new Promise<{ code: number; out: string; err: string }>((resolve) => {
    execFile(
      path.join(REPO_ROOT, 'packages/cli/bin/dbbackup'),
      args,
      {
        env: {
          PATH: process.env.PATH ?? '',
          HOME: store,
          DBBACKUP_SERVER: cp.url,
          DBBACKUP_TOKEN: cp.adminToken,
        },
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout, err: stderr }),
    );
  });
}

beforeAll(async () => {
  cp = await controlPlane({
    env: { DBBACKUP_KEY_ROTATION_INTERVAL_MS: '200', DBBACKUP_KEY_RETIRE_GRACE_MS: '0' },
  });
  store = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-rotate-')));
  agent = await startAgent(cp);
  await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
  const s = await cp.api<{ id: string }>('POST', '/api/v1/storage', {
    kind: 'local',
    name: 'disk',
    directory: path.join(store, 'b'),
  });
  storageId = s.body.id;
  targetId = await smallPgTarget(cp, agent.id, s.body.id, 'ledger', 500);
  for (let i = 0; i < 2; i++) {
    const { job, backup } = await runBackup(cp, targetId);
    expect(job.state).toBe('succeeded');
    backupIds.push((backup as { id: string }).id);
  }
});
afterAll(cleanupAll);

describe('key rotation', () => {
  it('re-wraps every backup to a new key, rewrites only meta.json, and a backup from before restores', async () => {
    const oldKid = (await cp.api<{ kid: string }>('GET', '/api/v1/keys/kek')).body.kid;
    const data = Object.fromEntries(dataObjects().map((f) => [f, fingerprintFile(f)]));
    const metasBefore = Object.fromEntries(metaFiles().map((f) => [f, JSON.parse(readFileSync(f, 'utf8'))]));
    expect(Object.keys(metasBefore)).toHaveLength(2);
    for (const m of Object.values(metasBefore)) expect(m.kekId).toBe(oldKid);

    const r = await cli(['rotate-keys', '--wait', '--json']);
    expect(r.code, r.err).toBe(0);
    const done = JSON.parse(r.out) as { state: string; total: number; done: number; toKid: string };
    expect(done).toMatchObject({ state: 'succeeded', total: 2, done: 2 });
    expect(done.toKid).not.toBe(oldKid);
    expect((await cp.api<{ kid: string }>('GET', '/api/v1/keys/kek')).body.kid).toBe(done.toKid);

    // Data objects untouched (same bytes, same mtime); each meta.json names the new key, otherwise unchanged.
    expect(Object.fromEntries(dataObjects().map((f) => [f, fingerprintFile(f)]))).toEqual(data);
    for (const [f, before] of Object.entries(metasBefore)) {
      const after = JSON.parse(readFileSync(f, 'utf8'));
      expect(after.kekId).toBe(done.toKid);
      expect(after.wrappedKey).not.toBe(before.wrappedKey);
      expect({ ...after, kekId: 0, wrappedKey: 0 }).toEqual({ ...before, kekId: 0, wrappedKey: 0 });
    }

    // The oldest backup, made under the old key, restores under the new one.
    const into = `rot_${Date.now()}`;
    const job = await cp.api<{ id: string }>('POST', `/api/v1/backups/${backupIds[0]}/restore`, {
      database: into,
      conflict: 'create',
    });
    expect((await waitJob(cp, job.body.id)).state).toBe('succeeded');
    expect(await query(dbUrl(into), 'SELECT count(*)::int AS n FROM t')).toEqual([{ n: 500 }]);

    // The old private key goes once nothing needs it (every meta.json rewritten, the agent's
    // configuration acknowledged, no backup in flight); new backups wrap to the new key.
    const old = await waitFor(
      async () => {
        const e = await cp.api<{ detail: string }>('POST', `/api/v1/keys/kek/export?kid=${oldKid}`);
        return e.status === 409 ? e : undefined;
      },
      { what: 'the old key retired' },
    );
    expect(old.value.body.detail).toMatch(/retired/);
    const after = await runBackup(cp, targetId);
    expect((after.backup as unknown as { meta: { kekId: string } }).meta.kekId).toBe(done.toKid);
    backupIds.push((after.backup as { id: string }).id);
  });

  it('waits for an offline agent and finishes when it is back; one rotation at a time', async () => {
    await agent.proc.kill('SIGKILL');
    await waitFor(async () => (await getAgent(cp, agent.id)).status === 'offline', {
      timeoutMs: 10_000,
      what: 'offline',
    });
    // Three asked for at once: one starts, the others are told one is running.
    const raced = await Promise.all(
      [1, 2, 3].map(() => cp.api<{ id: string; toKid: string }>('POST', '/api/v1/keys/kek/rotate')),
    );
    expect(raced.map((r) => r.status).sort()).toEqual([202, 409, 409]);
    const start = raced.find((r) => r.status === 202) as (typeof raced)[number];
    expect((await cp.api('POST', '/api/v1/keys/kek/rotate')).status).toBe(409);
    expect((await query(cp.databaseUrl, 'SELECT kid FROM keys WHERE active')).length).toBe(1);
    await new Promise((r) => setTimeout(r, 1500));
    const waiting = (
      await cp.api<{ state: string; done: number; total: number }>(
        'GET',
        `/api/v1/keys/rotations/${start.body.id}`,
      )
    ).body;
    expect(waiting).toMatchObject({ state: 'running', done: 0, total: 3 });
    // Until every backup is re-wrapped the previous key is kept (export still works).
    const prev = await query<{ kid: string }>(
      cp.databaseUrl,
      `SELECT kid FROM keys WHERE private_enc IS NOT NULL AND kid <> $1`,
      [start.body.toKid],
    );
    expect(prev).toHaveLength(1);

    agent.restart();
    const { value } = await waitFor(
      async () => {
        const v = (
          await cp.api<{ state: string; done: number }>('GET', `/api/v1/keys/rotations/${start.body.id}`)
        ).body;
        return v.state === 'succeeded' ? v : undefined;
      },
      { timeoutMs: 30_000, what: 'rotation finished' },
    );
    expect(value.done).toBe(3);
    for (const f of metaFiles()) expect(JSON.parse(readFileSync(f, 'utf8')).kekId).toBe(start.body.toKid);
    const v = await cp.api<{ id: string }>('POST', `/api/v1/backups/${backupIds[2]}/verify`);
    expect((await waitJob(cp, v.body.id)).state).toBe('succeeded');
  });

  it('refuses bad input: unknown rotation or key, and a raw meta.rewrite', async () => {
    expect((await cp.api('GET', '/api/v1/keys/rotations/not-a-uuid')).status).toBe(404);
    expect((await cp.api('GET', '/api/v1/keys/rotations/00000000-0000-4000-8000-000000000000')).status).toBe(
      404,
    );
    const noKey = await cp.api<{ detail: string }>('POST', '/api/v1/keys/kek/export?kid=kek-nope');
    expect(noKey.status).toBe(404);
    expect(noKey.headers.get('content-type')).toMatch(/problem\+json/);

    const b = (
      await cp.api<{ id: string; sha256: string; meta: { kekId: string; objectKey: string } }>(
        'GET',
        `/api/v1/backups/${backupIds[0]}`,
      )
    ).body;
    const metaFile = metaFiles().find((f) =>
      f.endsWith(`${path.basename(b.meta.objectKey)}.meta.json`),
    ) as string;
    const before = readFileSync(metaFile, 'utf8');
    // The raw command API does not take meta.rewrite at all (only ping and probe).
    const cmd = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agent.id}/commands`, {
      command: {
        kind: 'meta.rewrite',
        storage: { kind: 'local', id: storageId, directory: path.join(store, 'b'), prefix: '' },
        metaKey: `${b.meta.objectKey}.meta.json`,
        backupId: b.id,
        sha256: '0'.repeat(64),
        wrappedKey: 'not-a-jwe',
        kekId: 'kek-forged',
      },
    });
    expect(cmd.status).toBe(422);
    expect(readFileSync(metaFile, 'utf8')).toBe(before);
  });

  /** The finished rotation, waiting for it. */
  async function rotated(id: string) {
    const { value } = await waitFor(
      async () => {
        const v = (
          await cp.api<{ state: string; toKid: string; lastError: string | null }>(
            'GET',
            `/api/v1/keys/rotations/${id}`,
          )
        ).body;
        return v.state === 'succeeded' ? v : undefined;
      },
      { timeoutMs: 30_000, what: 'rotation finished' },
    );
    return value;
  }
  const exportStatus = async (kid: string) =>
    (await cp.api('POST', `/api/v1/keys/kek/export?kid=${kid}`)).status;

  it('never retires a key a backup still in flight was sealed to: after both finish it verifies and restores', async () => {
    const oldKid = (await cp.api<{ kid: string }>('GET', '/api/v1/keys/kek')).body.kid;
    // Hold the backup mid-flight: pg_dump waits for a lock on its table.
    const db = (
      await query<{ d: string }>(cp.databaseUrl, 'SELECT connection->>$2 AS d FROM targets WHERE id = $1', [
        targetId,
        'database',
      ])
    )[0]?.d as string;
    const holder = new pg.Client({ connectionString: dbUrl(db) });
    await holder.connect();
    await holder.query('BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE;');
    const job = await cp.api<{ id: string }>('POST', `/api/v1/targets/${targetId}/backups`);
    expect(job.status).toBe(202);
    await waitFor(
      async () =>
        (await cp.api<{ state: string }>('GET', `/api/v1/jobs/${job.body.id}`)).body.state === 'running',
      { what: 'backup running' },
    );
    const rot = await cp.api<{ id: string; toKid: string }>('POST', '/api/v1/keys/kek/rotate');
    expect(rot.status).toBe(202);
    await rotated(rot.body.id);
    // The rotation is done with the catalogue, but the key the running backup seals to stays.
    await new Promise((r) => setTimeout(r, 1000));
    expect(await exportStatus(oldKid)).toBe(200);

    await holder.query('COMMIT');
    await holder.end();
    const done = await waitJob(cp, job.body.id);
    expect(done.state, JSON.stringify(done.error)).toBe('succeeded');
    const backupId = (done.result as { backupId: string }).backupId;
    // Arrived under the old key: re-wrapped on receipt, its meta.json rewritten, then the old key goes.
    await waitFor(async () => (await exportStatus(oldKid)) === 409, {
      timeoutMs: 30_000,
      what: 'old key retired',
    });
    const b = (
      await cp.api<{ meta: { kekId: string; objectKey: string } }>('GET', `/api/v1/backups/${backupId}`)
    ).body;
    expect(b.meta.kekId).toBe(rot.body.toKid);
    const metaFile = metaFiles().find((f) =>
      f.endsWith(`${path.basename(b.meta.objectKey)}.meta.json`),
    ) as string;
    expect(JSON.parse(readFileSync(metaFile, 'utf8')).kekId).toBe(rot.body.toKid);
    const v = await cp.api<{ id: string }>('POST', `/api/v1/backups/${backupId}/verify`);
    expect((await waitJob(cp, v.body.id)).state).toBe('succeeded');
    const into = `held_${Date.now()}`;
    const r = await cp.api<{ id: string }>('POST', `/api/v1/backups/${backupId}/restore`, {
      database: into,
      conflict: 'create',
    });
    expect((await waitJob(cp, r.body.id)).state).toBe('succeeded');
    expect(await query(dbUrl(into), 'SELECT count(*)::int AS n FROM t')).toEqual([{ n: 500 }]);
  });

  it('with a revoked agent’s backups: finishes, keeps the old key for their meta.json, and takes the next rotation', async () => {
    const other = await startAgent(cp);
    await waitFor(async () => (await getAgent(cp, other.id)).status === 'online', { what: 'online' });
    const t = await smallPgTarget(cp, other.id, storageId, 'revoked-one', 10);
    const { job } = await runBackup(cp, t);
    expect(job.state).toBe('succeeded');
    expect((await cp.api('DELETE', `/api/v1/agents/${other.id}`)).status).toBe(204);
    const oldKid = (await cp.api<{ kid: string }>('GET', '/api/v1/keys/kek')).body.kid;

    const rot = await cp.api<{ id: string; toKid: string }>('POST', '/api/v1/keys/kek/rotate');
    expect(rot.status).toBe(202);
    const done = await rotated(rot.body.id);
    expect(done.lastError).toMatch(/1 meta\.json .* still name an older key/);
    // Every catalogue entry opens with the new key; the revoked agent's meta.json still needs the old one.
    const stale = await query(
      cp.databaseUrl,
      "SELECT id FROM backups WHERE meta->>'kekId' <> $1 AND deleted_at IS NULL",
      [rot.body.toKid],
    );
    expect(stale).toEqual([]);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await exportStatus(oldKid)).toBe(200);
    // The next rotation is accepted.
    const next = await cp.api<{ id: string }>('POST', '/api/v1/keys/kek/rotate');
    expect(next.status).toBe(202);
    await rotated(next.body.id);
  });
});
