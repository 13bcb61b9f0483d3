import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type ControlPlane,
  cleanupAll,
  type MariaDb,
  query,
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
import {
  createDb,
  dbUrl,
  type Job,
  jobLogs,
  pgPort,
  runBackup,
  s3Profile,
  waitJob,
} from './backup-support.js';
import { controlPlane, getAgent } from './support.js';

const MARIADB_PASSWORD = 'Maria-Drill-Pw-5c2e';
const HOOK_SECRET = 'drill-hook-secret-0123456789';

let cp: ControlPlane;
let s3: S3Server;
let maria: MariaDb;
let redis: Redis;
let agent: Awaited<ReturnType<typeof startAgent>>;
let storageId: string;
let work: string;
const hook: { url: string; got: { event: string; body: Record<string, unknown> }[] } = { url: '', got: [] };

type DrillResult = {
  backupId: string;
  rtoSeconds: number;
  dataAgeSeconds: number;
  tablesChecked: number;
  tables: { table: string; expected: number; found: number | null; ok: boolean }[];
};
type Alert = { kind: string; state: string; targetId: string | null; message: string };

const agentEnv = () => ({
  DBBACKUP_SECRET_MARIA: MARIADB_PASSWORD,
  DBBACKUP_SECRET_MARIA_ALLOW: `127.0.0.1:${maria.port}`,
});

async function online() {
  await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'agent online' });
}

async function mustTarget(body: Record<string, unknown>) {
  await online();
  const r = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agent.id}/targets`, {
    storageId,
    ...body,
  });
  if (r.status !== 201) throw new Error(`target: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.id;
}

async function backed(targetId: string) {
  const { job, backup } = await runBackup(cp, targetId);
  expect(job.state, `${JSON.stringify(job.error)}\n${await jobLogs(cp, job.id)}`).toBe('succeeded');
  return backup!;
}

async function drill(targetId: string): Promise<Job> {
  const r = await cp.api<Job>('POST', `/api/v1/targets/${targetId}/drills`);
  expect(r.status, JSON.stringify(r.body)).toBe(202);
  return waitJob(cp, r.body.id, 180_000);
}

async function alerts(targetId: string) {
  return (await cp.api<{ items: Alert[] }>('GET', `/api/v1/alerts?target=${targetId}`)).body.items;
}

/** What is left of any drill: scratch databases, files, directories, throwaway servers. */
async function leftovers() {
  const pg = await query<{ datname: string }>(
    dbUrl('postgres'),
    "SELECT datname FROM pg_database WHERE datname LIKE 'dbbackup_drill_%'",
  );
  const mariaDbs = maria.sql("SHOW DATABASES LIKE 'dbbackup\\_drill\\_%'").map((r) => r.join(''));
  const dir = path.join(agent.stateDir, 'drills');
  const files = existsSync(dir) ? readdirSync(dir) : [];
  const servers = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes('redis-server') && l.includes(agent.stateDir));
  return [...pg.map((r) => `pg:${r.datname}`), ...mariaDbs.map((d) => `mariadb:${d}`), ...files, ...servers];
}

function webhookReceiver(): Promise<string> {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const parsed = JSON.parse(body) as { event: string };
      hook.got.push({ event: parsed.event, body: parsed as Record<string, unknown> });
      res.writeHead(204).end();
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve(`http://127.0.0.1:${(server.address() as { port: number }).port}`),
    ),
  );
}

beforeAll(async () => {
  cp = await controlPlane({
    env: { DBBACKUP_NOTIFY_RETRY_BASE_MS: '200', DBBACKUP_NOTIFY_INTERVAL_MS: '100' },
  });
  [s3, maria, redis, hook.url] = await Promise.all([
    startS3(),
    startMariaDb(),
    startRedis(),
    webhookReceiver(),
  ]);
  maria.sql(
    `CREATE USER 'dbb'@'127.0.0.1' IDENTIFIED BY '${MARIADB_PASSWORD}'; GRANT ALL ON *.* TO 'dbb'@'127.0.0.1'; FLUSH PRIVILEGES;`,
  );
  agent = await startAgent(cp, { env: agentEnv() });
  await online();
  storageId = await s3Profile(cp, s3, 'drills');
  work = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-drills-')));
  const ch = await cp.api('POST', '/api/v1/notifications/channels', {
    name: 'drill-hook',
    config: { kind: 'webhook', url: `${hook.url}/drills`, secret: HOOK_SECRET },
    events: ['drill.failed'],
  });
  expect(ch.status, JSON.stringify(ch.body)).toBe(201);
}, 240_000);
afterAll(cleanupAll);

describe('restore drills', () => {
  const engines: [string, () => Promise<Record<string, unknown>>][] = [
    [
      'PostgreSQL',
      async () => {
        const db = await createDb();
        await query(
          dbUrl(db),
          'CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 1234);',
        );
        return {
          engine: 'postgresql',
          connection: { host: '127.0.0.1', port: pgPort(), database: db, user: 'postgres' },
        };
      },
    ],
    [
      'MariaDB',
      async () => {
        maria.sql(
          'CREATE DATABASE drilled; CREATE TABLE drilled.t (id INT PRIMARY KEY); INSERT INTO drilled.t VALUES (1),(2),(3);',
        );
        return {
          engine: 'mysql',
          connection: { host: '127.0.0.1', port: maria.port, database: 'drilled', user: 'dbb' },
          secretRef: { kind: 'secret', name: 'maria' },
        };
      },
    ],
    [
      'SQLite',
      async () => {
        const file = path.join(work, 'app.db');
        execFileSync('sqlite3', [file, 'CREATE TABLE t(v); INSERT INTO t VALUES (1),(2);']);
        return { engine: 'sqlite', connection: { path: file } };
      },
    ],
    [
      'Redis (a throwaway redis-server)',
      async () => {
        for (let i = 0; i < 50; i++) redis.cli('SET', `k${i}`, `v${i}`);
        return { engine: 'redis', connection: { host: '127.0.0.1', port: redis.port } };
      },
    ],
    [
      'files',
      async () => {
        const dir = path.join(work, 'tree');
        mkdirSync(path.join(dir, 'sub'), { recursive: true });
        writeFileSync(path.join(dir, 'a.txt'), 'a');
        writeFileSync(path.join(dir, 'sub', 'b.txt'), 'b');
        return { engine: 'files', connection: { path: dir } };
      },
    ],
  ];

  it.each(engines)(
    '%s: the newest backup restores into a scratch copy, is checked and measured, and nothing is left',
    async (name, make) => {
      const targetId = await mustTarget({
        name: `drill-${name.split(' ')[0]!.toLowerCase()}`,
        ...(await make()),
      });
      const backup = await backed(targetId);
      const job = await drill(targetId);
      expect(job.state, `${JSON.stringify(job.error)}\n${await jobLogs(cp, job.id)}`).toBe('succeeded');
      const r = job.result as DrillResult;
      expect(r.backupId).toBe(backup.id);
      expect(r.rtoSeconds).toBeGreaterThan(0);
      expect(r.dataAgeSeconds).toBeGreaterThanOrEqual(0);
      expect(r.tables.length).toBeGreaterThan(0);
      expect(r.tables.every((t) => t.ok)).toBe(true);
      expect(await jobLogs(cp, job.id)).toMatch(/removed (the scratch|a throwaway)/);
      expect(await leftovers()).toEqual([]);
      const listed = await cp.api<{ items: Job[] }>('GET', `/api/v1/targets/${targetId}/drills`);
      expect(listed.body.items.map((j) => j.id)).toEqual([job.id]);
      const report = await cp.api<{
        items: { targetId: string; proven: boolean; measuredRtoSeconds: number }[];
      }>('GET', '/api/v1/reports/recoverability');
      expect(report.body.items.find((i) => i.targetId === targetId)).toMatchObject({
        proven: true,
        measuredRtoSeconds: r.rtoSeconds,
      });
      const health = await cp.api<{ lastDrill: { state: string } }>(
        'GET',
        `/api/v1/targets/${targetId}/health`,
      );
      expect(health.body.lastDrill.state).toBe('succeeded');
      const metrics = await (await fetch(`${cp.url}/metrics`)).text();
      expect(metrics).toMatch(new RegExp(`dbbackup_restore_rto_seconds\\{target_id="${targetId}"`));
    },
  );

  it('a backup verify passes but that cannot restore fails its drill, alerts through the webhook, and the next good drill resolves it', async () => {
    const role = `drill_ghost_${Date.now().toString(36)}`;
    const db = await createDb();
    await query(
      dbUrl(db),
      `CREATE ROLE ${role}; CREATE TABLE t (id int); INSERT INTO t VALUES (1); ALTER TABLE t OWNER TO ${role};`,
    );
    const targetId = await mustTarget({
      name: 'drill-ghost',
      engine: 'postgresql',
      connection: { host: '127.0.0.1', port: pgPort(), database: db, user: 'postgres' },
    });
    const backup = await backed(targetId);
    // The dump says ALTER TABLE … OWNER TO the role; without the role it cannot be restored.
    await query(dbUrl(db), `ALTER TABLE t OWNER TO postgres; DROP ROLE ${role};`);
    const v = await cp.api<Job>('POST', `/api/v1/backups/${backup.id}/verify`);
    expect((await waitJob(cp, v.body.id)).state).toBe('succeeded');
    const failed = await drill(targetId);
    expect(failed.state).toBe('failed');
    expect(failed.error?.message).toContain(role);
    expect(
      (await alerts(targetId)).filter((a) => a.kind === 'drill_failed' && a.state === 'firing'),
    ).toHaveLength(1);
    await waitFor(
      async () => hook.got.find((h) => h.event === 'drill.failed' && h.body.targetId === targetId),
      {
        what: 'drill.failed delivered to the webhook',
      },
    );
    expect(await leftovers()).toEqual([]);
    await query(dbUrl('postgres'), `CREATE ROLE ${role}`);
    const good = await drill(targetId);
    expect(good.state, JSON.stringify(good.error)).toBe('succeeded');
    expect((await alerts(targetId)).filter((a) => a.kind === 'drill_failed').map((a) => a.state)).toEqual([
      'resolved',
    ]);
    await query(dbUrl('postgres'), `DROP OWNED BY ${role}; DROP ROLE ${role}`).catch(() => {});
  });

  it('a restore slower than maxRestoreSeconds raises rto_exceeded, an older backup than maxDataAgeSeconds rpo_exceeded', async () => {
    const db = await createDb();
    await query(
      dbUrl(db),
      'CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100);',
    );
    const targetId = await mustTarget({
      name: 'drill-slow',
      engine: 'postgresql',
      connection: { host: '127.0.0.1', port: pgPort(), database: db, user: 'postgres' },
    });
    await backed(targetId);
    const put = await cp.api('PUT', `/api/v1/targets/${targetId}/drill`, {
      maxRestoreSeconds: 0.001,
      maxDataAgeSeconds: 0.001,
    });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    const job = await drill(targetId);
    expect(job.state).toBe('succeeded');
    const firing = (await alerts(targetId))
      .filter((a) => a.state === 'firing')
      .map((a) => a.kind)
      .sort();
    expect(firing).toEqual(['rpo_exceeded', 'rto_exceeded']);
    // Objectives it meets resolve them.
    await cp.api('PUT', `/api/v1/targets/${targetId}/drill`, {
      maxRestoreSeconds: 3600,
      maxDataAgeSeconds: 86_400,
    });
    expect((await drill(targetId)).state).toBe('succeeded');
    expect((await alerts(targetId)).filter((a) => a.state === 'firing')).toEqual([]);
  });

  it('a policy with a schedule drills on its own', async () => {
    const db = await createDb();
    await query(dbUrl(db), 'CREATE TABLE t (id int); INSERT INTO t VALUES (1);');
    const targetId = await mustTarget({
      name: 'drill-scheduled',
      engine: 'postgresql',
      connection: { host: '127.0.0.1', port: pgPort(), database: db, user: 'postgres' },
    });
    await backed(targetId);
    const put = await cp.api<{ nextRun: string }>('PUT', `/api/v1/targets/${targetId}/drill`, {
      cron: '* * * * * *',
    });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(put.body.nextRun).toBeTruthy();
    const job = await waitFor(
      async () =>
        (await cp.api<{ items: Job[] }>('GET', `/api/v1/targets/${targetId}/drills`)).body.items.find(
          (j) => j.state === 'succeeded',
        ),
      { timeoutMs: 60_000, what: 'a scheduled drill' },
    );
    expect((job.value.result as DrillResult).tablesChecked).toBeGreaterThan(0);
    await cp.api('DELETE', `/api/v1/targets/${targetId}/drill`);
  });

  it('retention keeps the newest proven backup while a newer one failed its drill, in the preview and on the agent', async () => {
    const db = await createDb();
    await query(dbUrl(db), 'CREATE TABLE t (id int); INSERT INTO t VALUES (1);');
    const targetId = await mustTarget({
      name: 'drill-retention',
      engine: 'postgresql',
      connection: { host: '127.0.0.1', port: pgPort(), database: db, user: 'postgres' },
    });
    const proven = await backed(targetId);
    expect((await drill(targetId)).state).toBe('succeeded');
    const role = `drill_owner_${Date.now().toString(36)}`;
    await query(dbUrl(db), `CREATE ROLE ${role}; ALTER TABLE t OWNER TO ${role};`);
    const broken = await backed(targetId);
    await query(dbUrl(db), `ALTER TABLE t OWNER TO postgres; DROP ROLE ${role};`);
    const failed = await drill(targetId);
    expect(failed.state).toBe('failed');
    const third = await backed(targetId);
    const put = await cp.api('PUT', `/api/v1/targets/${targetId}/retention`, { policy: { keepLast: 1 } });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    const preview = await cp.api<{ keep: { id: string }[]; delete: { id: string }[] }>(
      'GET',
      `/api/v1/targets/${targetId}/retention/preview`,
    );
    expect(preview.body.keep.map((k) => k.id)).toContain(proven.id);
    expect(preview.body.delete.map((d) => d.id).sort()).toEqual([broken.id].sort());
    // The agent applies the same rules after the next backup, from the configuration it was sent.
    const fourth = await backed(targetId);
    const left = await waitFor(
      async () => {
        const items = (await cp.api<{ items: { id: string }[] }>('GET', `/api/v1/backups?target=${targetId}`))
          .body.items;
        return items.length === 2 ? items : undefined;
      },
      { what: 'retention applied by the agent' },
    );
    expect(left.value.map((b) => b.id).sort()).toEqual([proven.id, fourth.id].sort());
    expect(third.id).not.toBe(fourth.id);
  });

  it('a policy of every second backup drills after the second one', async () => {
    const db = await createDb();
    await query(dbUrl(db), 'CREATE TABLE t (id int); INSERT INTO t VALUES (1);');
    const targetId = await mustTarget({
      name: 'drill-every-2nd',
      engine: 'postgresql',
      connection: { host: '127.0.0.1', port: pgPort(), database: db, user: 'postgres' },
    });
    expect((await cp.api('PUT', `/api/v1/targets/${targetId}/drill`, { everyNBackups: 2 })).status).toBe(200);
    await backed(targetId);
    await new Promise((r) => setTimeout(r, 3000));
    expect((await cp.api<{ items: Job[] }>('GET', `/api/v1/targets/${targetId}/drills`)).body.items).toEqual(
      [],
    );
    const second = await backed(targetId);
    const job = await waitFor(
      async () =>
        (await cp.api<{ items: Job[] }>('GET', `/api/v1/targets/${targetId}/drills`)).body.items.find(
          (j) => j.state === 'succeeded',
        ),
      { timeoutMs: 60_000, what: 'a drill after the second backup' },
    );
    expect((job.value.result as DrillResult).backupId).toBe(second.id);
  });

  it('bad input to the drill API is refused with problem+json and changes nothing', async () => {
    const db = await createDb();
    const targetId = await mustTarget({
      name: 'drill-bad-input',
      engine: 'postgresql',
      connection: { host: '127.0.0.1', port: pgPort(), database: db, user: 'postgres' },
    });
    const cases: [string, string, unknown, number][] = [
      ['PUT', `/api/v1/targets/${targetId}/drill`, { cron: 'every tuesday' }, 400],
      ['PUT', `/api/v1/targets/${targetId}/drill`, { cron: '0 3 * * *', timezone: 'Mars/Olympus' }, 400],
      ['PUT', `/api/v1/targets/${targetId}/drill`, { maxRestoreSeconds: -5 }, 422],
      ['PUT', `/api/v1/targets/${targetId}/drill`, { everyNBackups: 0 }, 422],
      ['PUT', `/api/v1/targets/${targetId}/drill`, { scratch: '/var/lib/postgresql' }, 422],
      ['PUT', `/api/v1/targets/${targetId}/drill`, { cron: '0 3 * * *', extra: true }, 422],
      ['PUT', '/api/v1/targets/00000000-0000-4000-8000-000000000000/drill', { cron: '0 3 * * *' }, 404],
      ['GET', `/api/v1/targets/${targetId}/drill`, undefined, 404],
      ['POST', `/api/v1/targets/${targetId}/drills`, undefined, 409],
      ['POST', '/api/v1/targets/not-a-uuid/drills', undefined, 404],
    ];
    for (const [method, url, body, status] of cases) {
      const r = await cp.api<{ type?: string }>(method, url, body);
      expect(r.status, `${method} ${url} ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`).toBe(status);
      expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
    }
    const policies = await query(cp.databaseUrl, 'SELECT * FROM drill_policies WHERE target_id = $1', [
      targetId,
    ]);
    expect(policies).toEqual([]);
    expect((await cp.api<{ items: Job[] }>('GET', `/api/v1/targets/${targetId}/drills`)).body.items).toEqual(
      [],
    );
  });

  it('not enough room for the scratch copy: the drill is skipped with the reason, nothing written', async () => {
    const db = await createDb();
    await query(dbUrl(db), 'CREATE TABLE t (id int); INSERT INTO t VALUES (1);');
    const targetId = await mustTarget({
      name: 'drill-no-room',
      engine: 'postgresql',
      connection: { host: '127.0.0.1', port: pgPort(), database: db, user: 'postgres' },
    });
    await backed(targetId);
    await agent.proc.kill('SIGTERM');
    agent.restart({ ...agentEnv(), DBBACKUP_TEST_FREE_BYTES: '1000' });
    await online();
    const job = await drill(targetId);
    expect(job.state).toBe('failed');
    expect(job.error?.code).toBe('insufficient-space');
    expect(job.error?.message).toMatch(/drill skipped: it needs about \d+ bytes .* 1000 are free/);
    expect(await leftovers()).toEqual([]);
    await agent.proc.kill('SIGTERM');
    agent.restart(agentEnv());
    await online();
  });

  it('kill -9 of the agent mid-drill: after restart the scratch database is gone and the drill failed as interrupted', async () => {
    const db = await createDb();
    await query(dbUrl(db), 'CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 500);');
    const targetId = await mustTarget({
      name: 'drill-killed',
      engine: 'postgresql',
      connection: { host: '127.0.0.1', port: pgPort(), database: db, user: 'postgres' },
    });
    await backed(targetId);
    await agent.proc.kill('SIGTERM');
    agent.restart({ ...agentEnv(), DBBACKUP_TEST_CRASH_POINT: 'during-drill' });
    await online();
    const r = await cp.api<Job>('POST', `/api/v1/targets/${targetId}/drills`);
    expect(r.status).toBe(202);
    await agent.proc.exited;
    // Killed with the restored scratch database still there.
    expect((await leftovers()).filter((l) => l.startsWith('pg:dbbackup_drill_'))).toHaveLength(1);
    agent.restart(agentEnv());
    const job = await waitJob(cp, r.body.id);
    expect(job.state).toBe('failed');
    expect(job.error?.code).toBe('interrupted');
    await waitFor(async () => (await leftovers()).length === 0, {
      what: 'scratch removed after the restart',
    });
    await online();
  });
});
