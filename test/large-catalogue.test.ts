import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MAX_SUMMARY_TABLES } from '@dbbackup/proto';
import { type ControlPlane, cleanupAll, startAgent, trackDir, waitFor } from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Job, jobLogs, runBackup, waitJob } from './backup-support.js';
import { controlPlane, getAgent, pingAnswered } from './support.js';

// A database with tens of thousands of tables must not make a result or a command
// outgrow the 1 MiB frame: results and commands carry a bounded summary, meta.json the
// full list (which the restore reads for its row-count check).
const TABLES = 25_000;

let cp: ControlPlane;
let agent: Awaited<ReturnType<typeof startAgent>>;
let targetId: string;
const work = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-wide-')));

beforeAll(async () => {
  cp = await controlPlane();
  agent = await startAgent(cp);
  await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
  const file = path.join(work, 'wide.db');
  const sql = path.join(work, 'wide.sql');
  const lines = ['BEGIN;'];
  for (let i = 0; i < TABLES; i++)
    lines.push(`CREATE TABLE t${i} (a int); INSERT INTO t${i} VALUES (${i % 3});`);
  lines.push('COMMIT;');
  writeFileSync(sql, lines.join('\n'));
  execFileSync('sqlite3', [file, `.read ${sql}`], { stdio: 'ignore' });
  const storage = await cp.api<{ id: string }>('POST', '/api/v1/storage', {
    kind: 'local',
    name: 'wide',
    directory: path.join(work, 'store'),
  });
  expect(storage.status, JSON.stringify(storage.body)).toBe(201);
  const t = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agent.id}/targets`, {
    engine: 'sqlite',
    name: 'wide',
    connection: { path: file },
    storageId: storage.body.id,
  });
  expect(t.status, JSON.stringify(t.body)).toBe(201);
  targetId = t.body.id;
}, 300_000);
afterAll(cleanupAll);

describe(`a database of ${TABLES} tables`, () => {
  it('is backed up and catalogued with a bounded summary, restores with every table checked, and later events flow', async () => {
    const { job, backup } = await runBackup(cp, targetId);
    expect(job.state, `${JSON.stringify(job.error)}\n${await jobLogs(cp, job.id)}`).toBe('succeeded');
    const meta = backup!.meta as { tables: unknown[]; tablesTotal?: number };
    expect(meta.tables.length).toBe(MAX_SUMMARY_TABLES);
    expect(meta.tablesTotal).toBe(TABLES);

    const dest = path.join(work, 'restored.db');
    const r = await cp.api<Job>('POST', `/api/v1/backups/${backup!.id}/restore`, {
      database: dest,
      conflict: 'create',
    });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const restored = await waitJob(cp, r.body.id, 180_000);
    expect(restored.state, `${JSON.stringify(restored.error)}\n${await jobLogs(cp, restored.id)}`).toBe(
      'succeeded',
    );
    expect(restored.result).toMatchObject({ tablesChecked: TABLES });

    // The stream was not jammed: a command sent afterwards is answered.
    await pingAnswered(cp, agent.id);
  }, 300_000);
});
