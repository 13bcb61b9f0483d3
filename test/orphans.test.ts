import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type ControlPlane,
  cleanupAll,
  query,
  type S3Server,
  startAgent,
  startS3,
  trackDir,
  waitFor,
} from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Backup, jobLogs, runBackup, s3Profile, waitJob } from './backup-support.js';
import { controlPlane, getAgent } from './support.js';

// No data object without its commit marker outlives its job: one whose job was
// interrupted after the upload completed is removed when the agent comes back, and a
// sweep after each backup removes older ones it finds, saying which.

let cp: ControlPlane;
let s3: S3Server;
const work = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-orphans-')));

beforeAll(async () => {
  cp = await controlPlane();
  s3 = await startS3();
}, 120_000);
afterAll(cleanupAll);

function sqliteDb(name: string) {
  const file = path.join(work, `${name}.db`);
  execFileSync('sqlite3', [file, 'CREATE TABLE t(v); INSERT INTO t VALUES (1),(2);']);
  return file;
}

/** Objects in the bucket: data objects and commit markers. */
function bucket() {
  const all = readdirSync(path.join(s3.directory, s3.bucket), { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('._S3rver_object'))
    .map((f) => f.slice(0, -'._S3rver_object'.length));
  return {
    data: all.filter((f) => !f.endsWith('.meta.json')),
    metas: all.filter((f) => f.endsWith('.meta.json')),
  };
}

describe('uncommitted data objects', () => {
  it('kill -9 between the upload and meta.json: the object is removed when the agent restarts', async () => {
    const agent = await startAgent(cp, { env: { DBBACKUP_TEST_CRASH_POINT: 'before-meta' } });
    await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
    const storageId = await s3Profile(cp, s3, 'crash');
    const t = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agent.id}/targets`, {
      engine: 'sqlite',
      name: 'crashy',
      connection: { path: sqliteDb('crashy') },
      storageId,
    });
    expect(t.status, JSON.stringify(t.body)).toBe(201);
    const r = await cp.api<{ id: string }>('POST', `/api/v1/targets/${t.body.id}/backups`);
    expect(r.status).toBe(202);
    await agent.proc.exited;
    // The data object is there, its commit marker is not.
    expect(bucket().data.filter((f) => f.includes('crashy'))).toHaveLength(1);
    expect(bucket().metas.filter((f) => f.includes('crashy'))).toEqual([]);

    agent.restart({});
    const job = await waitJob(cp, r.body.id);
    expect(job.state).toBe('failed');
    expect(job.error?.code).toBe('interrupted');
    await waitFor(async () => bucket().data.filter((f) => f.includes('crashy')).length === 0, {
      what: 'the uncommitted object removed',
    });
    const said = await query(
      cp.databaseUrl,
      "SELECT body FROM agent_events WHERE agent_id = $1 AND type = 'log' AND body->>'message' LIKE '%interrupted before the backup was committed%'",
      [agent.id],
    );
    expect(said).toHaveLength(1);
  });

  it('the sweep after a backup removes an old data object with no meta.json and says so; the backups stay', async () => {
    const agent = await startAgent(cp, { env: { DBBACKUP_ORPHAN_GRACE_MS: '60000' } });
    await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
    const dir = path.join(work, 'disk');
    const s = await cp.api<{ id: string }>('POST', '/api/v1/storage', {
      kind: 'local',
      name: 'disk',
      directory: dir,
    });
    const t = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agent.id}/targets`, {
      engine: 'sqlite',
      name: 'swept',
      connection: { path: sqliteDb('swept') },
      storageId: s.body.id,
    });
    expect(t.status, JSON.stringify(t.body)).toBe(201);
    const first = await runBackup(cp, t.body.id);
    expect(first.job.state, await jobLogs(cp, first.job.id)).toBe('succeeded');
    const folder = path.dirname(path.join(dir, (first.backup as Backup).objectKey));
    // Two data objects without a commit marker: one old (removed), one fresh (kept: it may be an upload in flight).
    mkdirSync(folder, { recursive: true });
    const old = path.join(folder, 'swept_sqlite_swept_20260101T000000Z_aaaaaaaaaaaa.sql.zst.enc');
    const fresh = path.join(folder, 'swept_sqlite_swept_20260101T000001Z_bbbbbbbbbbbb.sql.zst.enc');
    writeFileSync(old, 'orphan');
    writeFileSync(fresh, 'maybe in flight');
    const hourAgo = new Date(Date.now() - 3_600_000);
    utimesSync(old, hourAgo, hourAgo);

    const second = await runBackup(cp, t.body.id);
    expect(second.job.state, await jobLogs(cp, second.job.id)).toBe('succeeded');
    const left = readdirSync(folder).sort();
    expect(left).not.toContain(path.basename(old));
    expect(left).toContain(path.basename(fresh));
    for (const b of [first.backup, second.backup] as Backup[]) {
      expect(left).toContain(path.basename(b.objectKey));
      expect(left).toContain(`${path.basename(b.objectKey)}.meta.json`);
    }
    expect(await jobLogs(cp, second.job.id)).toMatch(new RegExp(`removed .*${path.basename(old)}`));
  });
});
