import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type ControlPlane,
  cleanupAll,
  type MariaDb,
  type PgServer,
  type Redis,
  startAgent,
  startMariaDb,
  startPostgres,
  startRedis,
  trackDir,
  waitFor,
} from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobLogs, runBackup } from './backup-support.js';
import { controlPlane, getAgent } from './support.js';

type Found = {
  key: string;
  engine: string;
  version: string | null;
  connection: Record<string, unknown>;
  targetId: string | null;
};

let cp: ControlPlane;
let pgs: PgServer;
let maria: MariaDb;
let redis: Redis;
let agent: Awaited<ReturnType<typeof startAgent>>;
let sqliteDir: string;
let storageId: string;

beforeAll(async () => {
  cp = await controlPlane({ heartbeatIntervalMs: 500 });
  [pgs, maria, redis] = await Promise.all([startPostgres(), startMariaDb(), startRedis()]);
  await pgs.createDatabase('discovered_shop');
  maria.sql('CREATE DATABASE discovered_crm');
  sqliteDir = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-disc-')));
  mkdirSync(path.join(sqliteDir, 'app'));
  execFileSync('sqlite3', [
    path.join(sqliteDir, 'app', 'data.db'),
    'CREATE TABLE t (x); INSERT INTO t VALUES (1);',
  ]);
  execFileSync('sh', ['-c', `echo 'not a database' > ${path.join(sqliteDir, 'app', 'notes.txt')}`]);
  agent = await startAgent(cp, {
    env: {
      DBBACKUP_DISCOVER_PG_SOCKET_DIRS: pgs.dir,
      DBBACKUP_DISCOVER_MYSQL_SOCKETS: maria.socket,
      DBBACKUP_DISCOVER_REDIS: `127.0.0.1:${redis.port}`,
      DBBACKUP_DISCOVER_SQLITE_PATHS: sqliteDir,
      DBBACKUP_DISCOVERY_INTERVAL_MS: '2000',
    },
  });
  await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
  const s = await cp.api<{ id: string }>('POST', '/api/v1/storage', {
    kind: 'local',
    name: 'disk',
    directory: trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-disc-store-'))),
  });
  storageId = s.body.id;
}, 180_000);
afterAll(cleanupAll);

async function discovered(): Promise<Found[]> {
  return (await cp.api<{ items: Found[] }>('GET', `/api/v1/agents/${agent.id}/discovered`)).body.items;
}

describe('discovery', () => {
  it('finds the PostgreSQL, MariaDB, Redis and SQLite databases on the agent’s host, without credentials', async () => {
    const { value } = await waitFor(
      async () => {
        const items = await discovered();
        const engines = new Set(items.map((i) => i.engine));
        return ['postgresql', 'mysql', 'redis', 'sqlite'].every((e) => engines.has(e)) ? items : undefined;
      },
      { timeoutMs: 30_000, what: 'all four engines discovered' },
    );
    expect(value).toContainEqual(
      expect.objectContaining({
        engine: 'postgresql',
        connection: { host: pgs.dir, port: pgs.port, user: 'postgres', database: 'discovered_shop' },
        version: expect.stringMatching(/^PostgreSQL \d+/),
      }),
    );
    expect(value).toContainEqual(
      expect.objectContaining({
        engine: 'mysql',
        connection: { host: maria.socket, database: 'discovered_crm' },
      }),
    );
    expect(value.filter((v) => v.engine === 'mysql').map((v) => v.connection.database)).not.toContain(
      'mysql',
    );
    expect(value).toContainEqual(
      expect.objectContaining({ engine: 'redis', connection: { host: '127.0.0.1', port: redis.port } }),
    );
    expect(value.filter((v) => v.engine === 'sqlite').map((v) => v.connection.path)).toEqual([
      path.join(sqliteDir, 'app', 'data.db'),
    ]);
  });

  it('adopting a discovered database makes a working target', async () => {
    const items = await discovered();
    for (const [engine, db] of [
      ['postgresql', 'discovered_shop'],
      ['mysql', 'discovered_crm'],
      ['redis', undefined],
    ] as const) {
      const found = items.find((i) => i.engine === engine && i.connection.database === db)!;
      const r = await cp.api<{ id: string; engine: string }>(
        'POST',
        `/api/v1/agents/${agent.id}/discovered/${found.key}/adopt`,
        { name: `adopted-${engine}`, storageId },
      );
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      const { job } = await runBackup(cp, r.body.id);
      expect(job.state, `${JSON.stringify(job.error)}\n${await jobLogs(cp, job.id)}`).toBe('succeeded');
    }
    const after = await discovered();
    expect(
      after
        .filter((i) => i.targetId)
        .map((i) => i.engine)
        .sort(),
    ).toEqual(['mysql', 'postgresql', 'redis']);
  });

  it('an unknown discovery key is a 404 problem', async () => {
    const r = await cp.api<{ status: number }>(
      'POST',
      `/api/v1/agents/${agent.id}/discovered/0123456789abcdef/adopt`,
      {
        name: 'nothing',
        storageId,
      },
    );
    expect(r.status).toBe(404);
  });
});
