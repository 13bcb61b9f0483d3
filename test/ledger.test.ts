import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
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
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, dbUrl, jobLogs, pgPort, runBackup, waitJob } from './backup-support.js';
import { controlPlane, getAgent } from './support.js';

/**
 * Consistency under load: a writer keeps moving money between the rows of a
 * ledger (the total never changes) for the whole backup; the restored total is
 * exactly the constant. Each transfer also bumps a counter, so the test can prove
 * that transfers committed while the backup ran.
 */
const ACCOUNTS = 1000;
const TOTAL = ACCOUNTS * 1000;

let cp: ControlPlane;
let maria: MariaDb;
let agent: Awaited<ReturnType<typeof startAgent>>;
let storageId: string;
let work: string;

beforeAll(async () => {
  cp = await controlPlane();
  maria = await startMariaDb();
  agent = await startAgent(cp);
  await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
  work = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-ledger-')));
  const s = await cp.api<{ id: string }>('POST', '/api/v1/storage', {
    kind: 'local',
    name: 'disk',
    directory: path.join(work, 'backups'),
  });
  expect(s.status).toBe(201);
  storageId = s.body.id;
}, 120_000);
afterAll(cleanupAll);

/** A writer fed through a client's stdin: one transfer per line, until stopped. */
function streamWriter(cmd: string, args: string[], transfer: (i: number) => string) {
  const child: ChildProcess = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  let stopped = false;
  let i = 0;
  const loop = (async () => {
    while (!stopped) {
      const batch = Array.from({ length: 20 }, () => transfer(i++)).join('\n');
      if (!child.stdin!.write(`${batch}\n`)) await new Promise((r) => child.stdin!.once('drain', r));
      await new Promise((r) => setImmediate(r));
    }
    child.stdin!.end();
    await new Promise((r) => child.once('close', r));
    if (child.exitCode !== 0) throw new Error(`${cmd} writer failed (${child.exitCode}): ${stderr}`);
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

const pick = (i: number) => {
  const a = ((i * 7919) % ACCOUNTS) + 1;
  const b = ((i * 104729 + 13) % ACCOUNTS) + 1;
  return { a, b: b === a ? (b % ACCOUNTS) + 1 : b, amount: (i % 50) + 1 };
};

async function backupUnderLoad(
  targetBody: Record<string, unknown>,
  counter: () => Promise<number>,
  startWriter: () => { stop(): Promise<void> },
) {
  const t = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agent.id}/targets`, {
    storageId,
    ...targetBody,
  });
  expect(t.status, JSON.stringify(t.body)).toBe(201);
  const writer = startWriter();
  await waitFor(async () => (await counter()) > 50, { timeoutMs: 30_000, what: 'writer running' });
  const before = await counter();
  const { job, backup } = await runBackup(cp, t.body.id);
  const after = await counter();
  await writer.stop();
  expect(job.state, `${JSON.stringify(job.error)}\n${await jobLogs(cp, job.id)}`).toBe('succeeded');
  // Transfers committed while the backup ran.
  expect(after - before).toBeGreaterThan(20);
  return backup!;
}

describe('a ledger keeps its total through a backup taken under write load', () => {
  it('PostgreSQL', async () => {
    const db = await createDb();
    await query(
      dbUrl(db),
      `CREATE TABLE ledger (id int PRIMARY KEY, balance bigint NOT NULL);
       INSERT INTO ledger SELECT g, 1000 FROM generate_series(1, ${ACCOUNTS}) g;
       CREATE TABLE counter (n bigint NOT NULL); INSERT INTO counter VALUES (0);
       CREATE TABLE filler AS SELECT g AS id, md5(g::text) || md5((g * 3)::text) AS pad FROM generate_series(1, 400000) g;`,
    );
    const b = await backupUnderLoad(
      {
        engine: 'postgresql',
        name: 'ledger-pg',
        connection: { host: '127.0.0.1', port: pgPort(), database: db, user: 'postgres' },
      },
      async () => Number((await query<{ n: string }>(dbUrl(db), 'SELECT n FROM counter'))[0]!.n),
      () => {
        let stopped = false;
        const c = new pg.Client({ connectionString: dbUrl(db) });
        const loop = (async () => {
          await c.connect();
          for (let i = 0; !stopped; i++) {
            const { a, b, amount } = pick(i);
            await c.query(
              `BEGIN; UPDATE ledger SET balance = balance - ${amount} WHERE id = ${a};
               UPDATE ledger SET balance = balance + ${amount} WHERE id = ${b}; UPDATE counter SET n = n + 1; COMMIT;`,
            );
          }
          await c.end();
        })();
        return {
          async stop() {
            stopped = true;
            await loop;
          },
        };
      },
    );
    const r = await cp.api<{ id: string }>('POST', `/api/v1/backups/${b.id}/restore`, {
      database: `${db}_restored`,
      conflict: 'create',
    });
    const job = await waitJob(cp, r.body.id);
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    const [sum] = await query<{ s: string; n: string }>(
      dbUrl(`${db}_restored`),
      'SELECT sum(balance) AS s, count(*) AS n FROM ledger',
    );
    expect(Number(sum!.s)).toBe(TOTAL);
    expect(Number(sum!.n)).toBe(ACCOUNTS);
  });

  it('MariaDB', async () => {
    maria.sql(`CREATE DATABASE ledger; USE ledger;
      CREATE TABLE ledger (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB;
      INSERT INTO ledger SELECT seq, 1000 FROM seq_1_to_${ACCOUNTS};
      CREATE TABLE counter (n BIGINT NOT NULL) ENGINE=InnoDB; INSERT INTO counter VALUES (0);
      CREATE TABLE filler (id INT PRIMARY KEY, pad CHAR(64)) ENGINE=InnoDB;
      INSERT INTO filler SELECT seq, MD5(seq) FROM seq_1_to_300000;`);
    const b = await backupUnderLoad(
      { engine: 'mysql', name: 'ledger-maria', connection: { host: maria.socket, database: 'ledger' } },
      async () => Number(maria.sql('SELECT n FROM counter', 'ledger')[0]![0]),
      () =>
        streamWriter('mariadb', [`--socket=${maria.socket}`, 'ledger'], (i) => {
          const { a, b, amount } = pick(i);
          return `START TRANSACTION; UPDATE ledger SET balance = balance - ${amount} WHERE id = ${a}; UPDATE ledger SET balance = balance + ${amount} WHERE id = ${b}; UPDATE counter SET n = n + 1; COMMIT;`;
        }),
    );
    expect(b.meta.tables).toContainEqual(expect.objectContaining({ table: 'ledger', rows: ACCOUNTS }));
    const r = await cp.api<{ id: string }>('POST', `/api/v1/backups/${b.id}/restore`, {
      database: 'ledger_restored',
      conflict: 'create',
    });
    const job = await waitJob(cp, r.body.id);
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    const [row] = maria.sql('SELECT SUM(balance), COUNT(*) FROM ledger', 'ledger_restored');
    expect(Number(row![0])).toBe(TOTAL);
    expect(Number(row![1])).toBe(ACCOUNTS);
  });

  it('SQLite (WAL)', async () => {
    const file = path.join(work, 'ledger.db');
    execFileSync('sqlite3', [
      file,
      `PRAGMA journal_mode=WAL;
       CREATE TABLE ledger (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
       WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < ${ACCOUNTS}) INSERT INTO ledger SELECT i, 1000 FROM s;
       CREATE TABLE counter (n INTEGER NOT NULL); INSERT INTO counter VALUES (0);
       CREATE TABLE filler (id INTEGER PRIMARY KEY, pad TEXT);
       WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < 300000) INSERT INTO filler SELECT i, hex(randomblob(32)) FROM s;`,
    ]);
    const b = await backupUnderLoad(
      { engine: 'sqlite', name: 'ledger-sqlite', connection: { path: file } },
      async () =>
        Number(execFileSync('sqlite3', ['-cmd', '.timeout 5000', file, 'SELECT n FROM counter']).toString()),
      () =>
        streamWriter('sqlite3', ['-bail', '-cmd', '.timeout 10000', file], (i) => {
          const { a, b, amount } = pick(i);
          return `BEGIN IMMEDIATE; UPDATE ledger SET balance = balance - ${amount} WHERE id = ${a}; UPDATE ledger SET balance = balance + ${amount} WHERE id = ${b}; UPDATE counter SET n = n + 1; COMMIT;`;
        }),
    );
    const into = path.join(work, 'ledger-restored.db');
    const r = await cp.api<{ id: string }>('POST', `/api/v1/backups/${b.id}/restore`, { database: into });
    const job = await waitJob(cp, r.body.id);
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    const out = execFileSync('sqlite3', [into, 'SELECT sum(balance), count(*) FROM ledger'])
      .toString()
      .trim();
    expect(out).toBe(`${TOTAL}|${ACCOUNTS}`);
  });
});
