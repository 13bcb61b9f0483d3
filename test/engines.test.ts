import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type ControlPlane,
  cleanupAll,
  type MariaDb,
  type Redis,
  type S3Server,
  startAgent,
  startMariaDb,
  startRedis,
  startS3,
  trackDir,
  waitFor,
} from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Job, jobLogs, runBackup, s3Profile, waitJob } from './backup-support.js';
import { controlPlane, getAgent } from './support.js';

const MARIADB_PASSWORD = 'Maria-Test-Pw-3b1f';
const REDIS_PASSWORD = 'Redis-Test-Pw-77ae';

let cp: ControlPlane;
let s3: S3Server;
let maria: MariaDb;
let redisA: Redis;
let redisB: Redis;
let agent: Awaited<ReturnType<typeof startAgent>>;
let storageId: string;
let work: string;

async function target(body: Record<string, unknown>) {
  return cp.api<{ id: string; detail?: string }>('POST', `/api/v1/agents/${agent.id}/targets`, {
    storageId,
    ...body,
  });
}
async function mustTarget(body: Record<string, unknown>) {
  const r = await target(body);
  if (r.status !== 201) throw new Error(`target: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.id;
}
async function backupOf(targetId: string) {
  const { job, backup } = await runBackup(cp, targetId);
  expect(job.state, `${JSON.stringify(job.error)}\n${await jobLogs(cp, job.id)}`).toBe('succeeded');
  return backup!;
}
async function restore(backupId: string, body: Record<string, unknown>): Promise<Job> {
  const r = await cp.api<Job>('POST', `/api/v1/backups/${backupId}/restore`, body);
  expect(r.status, JSON.stringify(r.body)).toBe(202);
  return waitJob(cp, r.body.id, 180_000);
}
async function verify(backupId: string): Promise<Job> {
  const r = await cp.api<Job>('POST', `/api/v1/backups/${backupId}/verify`);
  expect(r.status).toBe(202);
  return waitJob(cp, r.body.id);
}

async function expectVerified(backupId: string) {
  const j = await verify(backupId);
  expect(j.state, `${JSON.stringify(j.error)}\n${await jobLogs(cp, j.id)}`).toBe('succeeded');
}

const mariaTcp = (database: string) => ({
  engine: 'mysql',
  connection: { host: '127.0.0.1', port: maria.port, database, user: 'dbb' },
  secretRef: { kind: 'secret', name: 'maria' },
});

beforeAll(async () => {
  cp = await controlPlane();
  [s3, maria, redisA, redisB] = await Promise.all([
    startS3(),
    startMariaDb(),
    startRedis([`requirepass ${REDIS_PASSWORD}`]),
    startRedis(),
  ]);
  maria.sql(
    `CREATE USER 'dbb'@'127.0.0.1' IDENTIFIED BY '${MARIADB_PASSWORD}'; GRANT ALL ON *.* TO 'dbb'@'127.0.0.1'; FLUSH PRIVILEGES;`,
  );
  agent = await startAgent(cp, {
    env: {
      // Secrets declared on the agent's host, each bound to where it may be sent.
      DBBACKUP_SECRET_MARIA: MARIADB_PASSWORD,
      DBBACKUP_SECRET_MARIA_ALLOW: `127.0.0.1:${maria.port}`,
      DBBACKUP_SECRET_REDIS: REDIS_PASSWORD,
      DBBACKUP_SECRET_REDIS_ALLOW: `127.0.0.1:${redisA.port},127.0.0.1:${redisB.port}`,
      DBBACKUP_SECRET_WRONG: 'not-the-password',
      DBBACKUP_SECRET_WRONG_ALLOW: `127.0.0.1:${maria.port},127.0.0.1:${redisA.port}`,
      DBBACKUP_ALLOWED_COMMANDS: `${redisB.startCommand.join(' ')}\n`,
    },
  });
  await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
  storageId = await s3Profile(cp, s3, 'engines');
  work = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-engines-')));
}, 240_000);
afterAll(cleanupAll);

describe('MariaDB', () => {
  const fingerprint = (db: string) =>
    maria
      .sql(
        `SELECT COUNT(*), COALESCE(SUM(qty),0), MD5(GROUP_CONCAT(CONCAT(id,':',sku,':',qty,':',HEX(img)) ORDER BY id)) FROM items;
         SELECT COUNT(*), MD5(GROUP_CONCAT(body ORDER BY id)) FROM notes;
         SHOW CREATE TABLE items;
         SELECT default_character_set_name, default_collation_name FROM information_schema.schemata WHERE schema_name = DATABASE();
         SELECT trigger_name, event_manipulation, action_timing, action_statement FROM information_schema.triggers WHERE trigger_schema = DATABASE();
         SELECT routine_name, routine_type, routine_definition FROM information_schema.routines WHERE routine_schema = DATABASE();`,
        db,
      )
      .map((r) => r.join('|'));

  it('backs up through the REST API into S3 and restores into another database, identical', async () => {
    maria.sql(`CREATE DATABASE shop CHARACTER SET utf8mb4; USE shop;
      CREATE TABLE shop.items (id INT PRIMARY KEY, sku VARCHAR(40) NOT NULL, qty INT NOT NULL, img BLOB) ENGINE=InnoDB;
      CREATE TABLE shop.notes (id INT AUTO_INCREMENT PRIMARY KEY, body TEXT) ENGINE=InnoDB;
      INSERT INTO shop.items SELECT seq, CONCAT('sku-', seq), seq % 97, UNHEX(MD5(seq)) FROM seq_1_to_20000;
      INSERT INTO shop.notes (body) VALUES ('tab\\there'), ('quote '' and \\\\ backslash'), ('ünïcödé ✓');
      CREATE TRIGGER qty_check BEFORE INSERT ON items FOR EACH ROW SET NEW.qty = GREATEST(NEW.qty, 0);
      CREATE PROCEDURE restock(IN n INT) UPDATE items SET qty = qty + n;`);
    const before = fingerprint('shop');
    const t = await mustTarget({ ...mariaTcp('shop'), name: 'maria-shop' });
    const b = await backupOf(t);
    expect(b.objectKey).toMatch(
      /\/mysql\/shop\/\d{4}\/\d{2}\/maria-shop_mysql_shop_\d{8}T\d{6}Z_[0-9a-f]{12}\.sql\.zst\.enc$/,
    );
    expect(b.meta.tables).toEqual(
      expect.arrayContaining([
        { table: 'items', rows: 20000, exact: true },
        { table: 'notes', rows: 3, exact: true },
      ]),
    );
    await expectVerified(b.id);
    const job = await restore(b.id, { database: 'shop_copy', conflict: 'create' });
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    expect(fingerprint('shop_copy')).toEqual(before);
    // The default policy refuses a non-empty database and leaves it as it was.
    const again = await restore(b.id, { database: 'shop_copy' });
    expect(again.state).toBe('failed');
    expect(again.error?.message).toMatch(/not empty/);
    expect(fingerprint('shop_copy')).toEqual(before);
  });
});

describe('SQLite', () => {
  it('dumps a WAL database, restores into a new file that passes integrity_check, identical', async () => {
    const db = path.join(work, 'app.db');
    execFileSync('sqlite3', [
      db,
      `PRAGMA journal_mode=WAL; PRAGMA user_version=42;
       CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, avatar BLOB);
       CREATE TABLE "odd name" (v TEXT);
       WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < 5000)
         INSERT INTO users SELECT i, 'user ' || i || char(10) || 'second line', randomblob(32) FROM s;
       INSERT INTO "odd name" VALUES ('a'), ('b');
       CREATE INDEX users_name ON users(name);`,
    ]);
    const dumpOf = (f: string) => execFileSync('sqlite3', [f, '.dump']).toString();
    const t = await mustTarget({ engine: 'sqlite', name: 'app-db', connection: { path: db } });
    const b = await backupOf(t);
    expect(b.meta.tables).toEqual([
      { table: 'odd name', rows: 2, exact: true },
      { table: 'users', rows: 5000, exact: true },
    ]);
    await expectVerified(b.id);
    const into = path.join(work, 'restored', 'app-copy.db');
    mkdirSync(path.dirname(into));
    const job = await restore(b.id, { database: into });
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    expect(execFileSync('sqlite3', [into, 'PRAGMA integrity_check']).toString().trim()).toBe('ok');
    expect(dumpOf(into)).toBe(dumpOf(db));
    // What .dump leaves out is carried in the metadata and put back.
    expect(execFileSync('sqlite3', [into, 'PRAGMA user_version; PRAGMA journal_mode']).toString()).toBe(
      '42\nwal\n',
    );
    // An existing file is not overwritten under the default policy.
    const again = await restore(b.id, { database: into });
    expect(again.state).toBe('failed');
    expect(again.error?.message).toMatch(/exists/);
  });
});

describe('Redis', () => {
  it('streams an RDB snapshot and restores it into another instance through its start command', async () => {
    for (let db = 0; db < 2; db++) {
      const args = ['-n', String(db), 'MSET'];
      for (let i = 0; i < 500; i++) args.push(`k${db}:${i}`, `v${i}`);
      redisA.cli(...args);
    }
    redisA.cli('HSET', 'h', 'a', '1', 'b', '2');
    redisA.cli('RPUSH', 'l', 'x', 'y', 'z');
    const t = await mustTarget({
      engine: 'redis',
      name: 'cache',
      connection: { host: '127.0.0.1', port: redisA.port },
      secretRef: { kind: 'secret', name: 'redis' },
    });
    const b = await backupOf(t);
    expect(b.meta.tables).toEqual([
      { table: 'db0', rows: 502, exact: false },
      { table: 'db1', rows: 500, exact: false },
    ]);
    await expectVerified(b.id);
    const into = await mustTarget({
      engine: 'redis',
      name: 'cache-restore',
      connection: { host: '127.0.0.1', port: redisB.port },
      options: { startCommand: redisB.startCommand },
    });
    redisB.cli('SET', 'will-be', 'gone');
    // Default policy: a Redis holding keys is not replaced.
    const refused = await restore(b.id, { targetId: into });
    expect(refused.state).toBe('failed');
    expect(refused.error?.message).toMatch(/holds 1 keys/);
    expect(redisB.cli('GET', 'will-be')).toBe('gone');
    const job = await restore(b.id, { targetId: into, conflict: 'clean' });
    expect(job.state, `${JSON.stringify(job.error)}\n${await jobLogs(cp, job.id)}`).toBe('succeeded');
    expect(await jobLogs(cp, job.id)).toMatch(/Redis loaded 1002 keys \(the RDB holds 1002\)/);
    expect(redisB.cli('INFO', 'keyspace')).toMatch(/db0:keys=502[\s\S]*db1:keys=500/);
    expect(redisB.cli('HGET', 'h', 'b')).toBe('2');
    expect(redisB.cli('LRANGE', 'l', '0', '-1')).toBe('x\ny\nz');
    expect(redisB.cli('GET', 'will-be')).toBe('');
  });

  it('refuses a start command this agent does not allow, before stopping anything', async () => {
    const into = await mustTarget({
      engine: 'redis',
      name: 'cache-evil',
      connection: { host: '127.0.0.1', port: redisB.port },
      options: { startCommand: ['/bin/sh', '-c', 'touch /tmp/pwned'] },
    });
    const b = (
      await cp.api<{ items: { id: string; meta: { dbType: string } }[] }>('GET', '/api/v1/backups')
    ).body.items.find((x) => x.meta.dbType === 'redis')!;
    const job = await restore(b.id, { targetId: into, conflict: 'clean' });
    expect(job.state).toBe('failed');
    expect(job.error?.message).toMatch(/DBBACKUP_ALLOWED_COMMANDS/);
    expect(redisB.cli('PING')).toBe('PONG');
  });
});

describe('files', () => {
  it('keeps modes, mtimes, empty directories, symlinks and hard links, and leaves out excluded paths', async () => {
    const src = path.join(work, 'site');
    mkdirSync(path.join(src, 'conf', 'empty'), { recursive: true });
    mkdirSync(path.join(src, 'cache'));
    writeFileSync(path.join(src, 'conf', 'app.ini'), 'key=value\n');
    chmodSync(path.join(src, 'conf', 'app.ini'), 0o640);
    writeFileSync(path.join(src, 'run.sh'), '#!/bin/sh\necho hi\n');
    chmodSync(path.join(src, 'run.sh'), 0o755);
    writeFileSync(path.join(src, 'big.bin'), Buffer.alloc(3 * 1024 * 1024 + 7, 0x5a));
    writeFileSync(path.join(src, 'cache', 'tmp.dat'), 'skip me');
    writeFileSync(path.join(src, 'debug.log'), 'skip me too');
    symlinkSync('conf/app.ini', path.join(src, 'current.ini'));
    linkSync(path.join(src, 'run.sh'), path.join(src, 'run-again.sh'));
    const old = new Date('2020-02-02T02:02:02Z');
    utimesSync(path.join(src, 'conf', 'app.ini'), old, old);
    const t = await mustTarget({
      engine: 'files',
      name: 'site',
      connection: { path: src },
      options: { exclude: ['cache', '*.log'] },
    });
    const b = await backupOf(t);
    expect(b.meta.tables).toEqual([
      { table: 'directories', rows: 2, exact: true },
      { table: 'files', rows: 4, exact: true },
      { table: 'symlinks', rows: 1, exact: true },
    ]);
    await expectVerified(b.id);
    const dest = path.join(work, 'site-restored');
    const job = await restore(b.id, { database: dest });
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    const list = (d: string, rel = ''): string[] =>
      readdirSync(path.join(d, rel))
        .sort()
        .flatMap((n) => {
          const r = rel ? `${rel}/${n}` : n;
          const st = lstatSync(path.join(d, r));
          const line = `${r} ${st.mode.toString(8)} ${st.isSymbolicLink() ? readlinkSync(path.join(d, r)) : st.size}`;
          return st.isDirectory() ? [line, ...list(d, r)] : [line];
        });
    expect(list(dest)).toEqual(list(src).filter((l) => !/^(cache|debug\.log)/.test(l)));
    expect(statSync(path.join(dest, 'conf', 'app.ini')).mtime.toISOString()).toBe(old.toISOString());
    expect(statSync(path.join(dest, 'run.sh')).ino).toBe(statSync(path.join(dest, 'run-again.sh')).ino);
    expect(readFileSync(path.join(dest, 'big.bin')).equals(readFileSync(path.join(src, 'big.bin')))).toBe(
      true,
    );
  });
});

describe('targets that cannot be reached are refused with the engine’s own message', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    [
      'mariadb wrong password',
      {
        ...{ engine: 'mysql', connection: { host: '127.0.0.1', port: 0, database: 'shop', user: 'dbb' } },
        secretRef: { kind: 'secret', name: 'wrong' },
      },
      /Access denied for user 'dbb'/,
    ],
    [
      'mariadb unreachable',
      { engine: 'mysql', connection: { host: '127.0.0.1', port: 1, database: 'shop', user: 'dbb' } },
      /Can't connect/,
    ],
    [
      'redis wrong password',
      {
        engine: 'redis',
        connection: { host: '127.0.0.1', port: 0 },
        secretRef: { kind: 'secret', name: 'wrong' },
      },
      /WRONGPASS|NOAUTH/,
    ],
    [
      'redis unreachable',
      { engine: 'redis', connection: { host: '127.0.0.1', port: 1 } },
      /Could not connect|Connection refused/,
    ],
    [
      'postgresql unreachable',
      { engine: 'postgresql', connection: { host: '127.0.0.1', port: 1, database: 'x', user: 'postgres' } },
      /ECONNREFUSED/,
    ],
    ['sqlite missing file', { engine: 'sqlite', connection: { path: '/nonexistent/app.db' } }, /ENOENT/],
    [
      'sqlite not a database',
      { engine: 'sqlite', connection: { path: '/etc/hostname' } },
      /not a SQLite 3 database/,
    ],
    ['files missing directory', { engine: 'files', connection: { path: '/nonexistent/dir' } }, /ENOENT/],
  ];
  for (const [name, body, re] of cases) {
    it(name, async () => {
      const b = structuredClone(body) as { connection: { port?: number } };
      if (b.connection.port === 0) b.connection.port = name.startsWith('mariadb') ? maria.port : redisA.port;
      const started = Date.now();
      const r = await target({ ...b, name: `bad-${name.replace(/\W+/g, '-')}` });
      expect(r.status, JSON.stringify(r.body)).toBe(422);
      expect(r.body.detail).toMatch(re);
      expect(Date.now() - started).toBeLessThan(30_000);
      const list = await cp.api<{ items: { name: string }[] }>('GET', `/api/v1/agents/${agent.id}/targets`);
      expect(list.body.items.map((t) => t.name)).not.toContain(`bad-${name.replace(/\W+/g, '-')}`);
    });
  }

  it('a target without what its engine needs is a 422 naming the field', async () => {
    const r = await target({ engine: 'sqlite', name: 'no-path', connection: { database: 'x' } });
    expect(r.status).toBe(422);
    expect(JSON.stringify(r.body)).toMatch(/connection.path/);
  });
});
