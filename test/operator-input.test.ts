import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type ControlPlane,
  cleanupAll,
  type MariaDb,
  query,
  startAgent,
  startMariaDb,
  trackDir,
  waitFor,
} from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Backup, createDb, dbUrl, jobLogs, runBackup, smallPgTarget } from './backup-support.js';
import { controlPlane, getAgent } from './support.js';

// Operator input is data: a database name is an identifier, never a connection string
// or a tool option. Each hostile name is refused with 422 and the database it names is
// left as it was.

let cp: ControlPlane;
let agent: Awaited<ReturnType<typeof startAgent>>;
let maria: MariaDb;
let storageId: string;
let pgBackup: Backup;
let myBackup: Backup;
let prod: string;
const work = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-names-')));

beforeAll(async () => {
  cp = await controlPlane();
  maria = await startMariaDb();
  agent = await startAgent(cp);
  await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
  const s = await cp.api<{ id: string }>('POST', '/api/v1/storage', {
    kind: 'local',
    name: 'names',
    directory: path.join(work, 'store'),
  });
  storageId = s.body.id;
  // The "production" database the hostile names point at, with a sentinel row.
  prod = await createDb();
  await query(dbUrl(prod), "CREATE TABLE sentinel (v text); INSERT INTO sentinel VALUES ('untouched')");
  const pgTarget = await smallPgTarget(cp, agent.id, storageId, 'names-pg', 5);
  const pb = await runBackup(cp, pgTarget);
  expect(pb.job.state, await jobLogs(cp, pb.job.id)).toBe('succeeded');
  pgBackup = pb.backup!;

  maria.sql(
    'CREATE DATABASE prod; CREATE TABLE prod.sentinel (v text); INSERT INTO prod.sentinel VALUES (1);',
  );
  maria.sql('CREATE DATABASE src; CREATE TABLE src.t (a int); INSERT INTO src.t VALUES (1);');
  const mt = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agent.id}/targets`, {
    engine: 'mysql',
    name: 'names-my',
    connection: { host: maria.socket, database: 'src', user: 'root' },
    storageId,
  });
  expect(mt.status, JSON.stringify(mt.body)).toBe(201);
  const mb = await runBackup(cp, mt.body.id);
  expect(mb.job.state, await jobLogs(cp, mb.job.id)).toBe('succeeded');
  myBackup = mb.backup!;
}, 180_000);
afterAll(cleanupAll);

const pgDatabases = async () =>
  (await query<{ d: string }>(dbUrl('postgres'), 'SELECT datname AS d FROM pg_database ORDER BY 1')).map(
    (r) => r.d,
  );

describe('restore names', () => {
  const hostile = (p: string) => [
    `dbname=${p}`,
    `host=127.0.0.1 dbname=${p}`,
    `-d${p}`,
    `postgresql://postgres@127.0.0.1/${p}`,
    `--init-command=DROP DATABASE ${p}`,
    `${p} --clean`,
    `../${p}`,
  ];

  it('into PostgreSQL: every connection string, option or path is refused with 422 and prod is unchanged', async () => {
    const before = await pgDatabases();
    for (const database of hostile(prod)) {
      const r = await cp.api<{ status: number; errors?: unknown }>(
        'POST',
        `/api/v1/backups/${pgBackup.id}/restore`,
        {
          database,
          conflict: 'create',
        },
      );
      expect(r.status, database).toBe(422);
      expect(r.headers.get('content-type')).toMatch(/problem\+json/);
    }
    expect(await pgDatabases()).toEqual(before);
    expect(await query(dbUrl(prod), 'SELECT v FROM sentinel')).toEqual([{ v: 'untouched' }]);
    const tables = await query(dbUrl(prod), "SELECT tablename FROM pg_tables WHERE schemaname = 'public'");
    expect(tables).toEqual([{ tablename: 'sentinel' }]);
  });

  it('into MariaDB: every option or connection string is refused with 422 and prod is unchanged', async () => {
    for (const database of hostile('prod')) {
      const r = await cp.api('POST', `/api/v1/backups/${myBackup.id}/restore`, {
        database,
        conflict: 'create',
      });
      expect(r.status, database).toBe(422);
    }
    expect(maria.sql('SELECT v FROM prod.sentinel')).toEqual([['1']]);
    expect(maria.sql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'prod'")).toEqual([
      ['1'],
    ]);
  });

  it('a plain new name still restores (PostgreSQL and MariaDB)', async () => {
    const r = await cp.api<{ id: string }>('POST', `/api/v1/backups/${pgBackup.id}/restore`, {
      database: `plain_${Date.now()}`,
      conflict: 'create',
    });
    expect(r.status).toBe(202);
    const m = await cp.api<{ id: string }>('POST', `/api/v1/backups/${myBackup.id}/restore`, {
      database: 'plain_copy',
      conflict: 'create',
    });
    expect(m.status).toBe(202);
    for (const id of [r.body.id, m.body.id]) {
      const { value } = await waitFor(
        async () => {
          const j = (await cp.api<{ state: string }>('GET', `/api/v1/jobs/${id}`)).body;
          return ['succeeded', 'failed'].includes(j.state) ? j : undefined;
        },
        { what: 'restore', timeoutMs: 60_000 },
      );
      expect(value.state, await jobLogs(cp, id)).toBe('succeeded');
    }
    expect(maria.sql('SELECT count(*) FROM plain_copy.t')).toEqual([['1']]);
  });
});
