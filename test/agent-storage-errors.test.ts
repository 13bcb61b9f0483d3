import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type ControlPlane, cleanupAll, startAgent, trackDir, waitFor } from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobLogs, runBackup } from './backup-support.js';
import { controlPlane, getAgent, pingAnswered } from './support.js';

// The agent's state directory on a full disk: SQLite answers SQLITE_FULL to the job's
// event writes (injected with DBBACKUP_TEST_FAULT=job-events-full, since a real full
// filesystem needs a mount this machine's CI may not allow).

let cp: ControlPlane;
let agent: Awaited<ReturnType<typeof startAgent>>;
const work = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-full-')));

beforeAll(async () => {
  cp = await controlPlane();
  agent = await startAgent(cp, { env: { DBBACKUP_TEST_FAULT: 'job-events-full' } });
  await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
}, 120_000);
afterAll(cleanupAll);

function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => d.name);
}

describe('an agent whose state directory is full', () => {
  it('fails the job with a clear message, commits nothing, and keeps running', async () => {
    const db = path.join(work, 'src.db');
    execFileSync('sqlite3', [db, 'CREATE TABLE t(v); INSERT INTO t VALUES (1),(2);']);
    const store = path.join(work, 'store');
    const s = await cp.api<{ id: string }>('POST', '/api/v1/storage', {
      kind: 'local',
      name: 'full',
      directory: store,
    });
    const t = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agent.id}/targets`, {
      engine: 'sqlite',
      name: 'src',
      connection: { path: db },
      storageId: s.body.id,
    });
    expect(t.status, JSON.stringify(t.body)).toBe(201);
    const { job } = await runBackup(cp, t.body.id);
    expect(job.state).toBe('failed');
    expect(job.error?.code, await jobLogs(cp, job.id)).toBe('state-dir-full');
    expect(job.error?.message).toMatch(/state directory .*database or disk is full.*not committed/);
    // Nothing committed and no data object left behind.
    expect(files(store)).toEqual([]);
    expect((await cp.api('GET', `/api/v1/backups?target=${t.body.id}`)).body).toMatchObject({ items: [] });

    // The agent is still up and answering.
    expect(agent.proc.child.exitCode).toBeNull();
    await pingAnswered(cp, agent.id);
  });
});
