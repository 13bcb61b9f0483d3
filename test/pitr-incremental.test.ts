import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type ControlPlane,
  cleanupAll,
  freePort,
  onCleanup,
  type PgServer,
  postgresBinDir,
  query,
  type S3Server,
  startAgent,
  startPostgres,
  startS3,
  trackDir,
  waitFor,
} from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Job, jobLogs, runBackup, s3Profile, waitJob } from './backup-support.js';
import { controlPlane, getAgent } from './support.js';

/**
 * Incremental base backups need a PostgreSQL 17 server and its pg_basebackup and
 * pg_combinebackup. Debian 12 packages PostgreSQL 15 only: where no 17 (or newer) is
 * installed these tests are reported as skipped, not passed. The command construction,
 * the plan and the chain logic are unit-tested (agent/src/engines/postgres-incremental.test.ts,
 * proto/src/wal.test.ts, agent/src/jobs/wal-retention.test.ts).
 */
const MAJOR = (() => {
  try {
    return Number(path.basename(path.dirname(postgresBinDir())));
  } catch {
    return 0;
  }
})();
const HAS_17 = MAJOR >= 17 && existsSync(path.join(postgresBinDir(), 'pg_combinebackup'));
const isRoot = process.getuid?.() === 0;

let cp: ControlPlane;
let s3: S3Server;
let pg: PgServer;
let agent: Awaited<ReturnType<typeof startAgent>>;
let work: string;

type Meta = { engineMeta: Record<string, string>; sizeBytes: number };

describe.skipIf(!HAS_17)(
  'incremental base backups (PostgreSQL 17: pg_basebackup --incremental, pg_combinebackup)',
  () => {
    let targetId: string;
    const backups: { id: string; meta: Meta }[] = [];

    beforeAll(async () => {
      cp = await controlPlane();
      [s3, pg] = await Promise.all([startS3(), startPostgres({ settings: { summarize_wal: 'on' } })]);
      work = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-pitr-inc-')));
      if (isRoot) execFileSync('chown', ['postgres', work]);
      agent = await startAgent(cp, { env: { DBBACKUP_RESTORE_DIRS: work } });
      const storageId = await s3Profile(cp, s3, 'pitr-inc');
      await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'agent online' });
      const r = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agent.id}/targets`, {
        engine: 'postgresql',
        name: 'chain',
        connection: { host: '127.0.0.1', port: pg.port, database: 'postgres', user: 'postgres' },
        storageId,
        options: { physical: true, walSwitchSeconds: 5, incrementalFullEvery: 3 },
      });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      targetId = r.body.id;
      await query(pg.url(), 'CREATE DATABASE bench');
      execFileSync(
        path.join(postgresBinDir(), 'pgbench'),
        ['-i', '-s', '5', '-q', '-h', '127.0.0.1', '-p', String(pg.port), '-U', 'postgres', 'bench'],
        { stdio: 'pipe' },
      );
    }, 180_000);

    afterAll(async () => {
      await cleanupAll();
    });

    async function backup() {
      const { job, backup: b } = await runBackup(cp, targetId);
      expect(job.state, `${JSON.stringify(job.error)}\n${await jobLogs(cp, job.id)}`).toBe('succeeded');
      const entry = { id: b!.id, meta: b!.meta as unknown as Meta };
      backups.push(entry);
      return entry;
    }

    it('takes a full base backup, then incremental ones against the previous, then a full one again', async () => {
      const full = await backup();
      expect(full.meta.engineMeta.incremental).toBeUndefined();
      await query(pg.url('bench'), 'UPDATE pgbench_branches SET bbalance = bbalance + 1');
      const i1 = await backup();
      expect(i1.meta.engineMeta).toMatchObject({
        incremental: 'true',
        parentBackupId: full.id,
        chainRootId: full.id,
        chainLength: '2',
      });
      // Only changed blocks: far smaller than the full one.
      expect(i1.meta.sizeBytes).toBeLessThan(full.meta.sizeBytes / 2);
      await query(pg.url('bench'), 'CREATE TABLE marker (n int); INSERT INTO marker VALUES (1)');
      const i2 = await backup();
      expect(i2.meta.engineMeta).toMatchObject({ parentBackupId: i1.id, chainLength: '3' });
      const next = await backup();
      expect(next.meta.engineMeta.incremental).toBeUndefined();
    }, 300_000);

    it('restores through the chain: pg_combinebackup of full + incrementals, then WAL to the point asked', async () => {
      const i2 = backups[2]!;
      // A point after the second incremental and before the next full backup: its base is the incremental one.
      const w = await cp.api<{ baseBackups: { backupId: string; consistentAt: string }[] }>(
        'GET',
        `/api/v1/targets/${targetId}/recovery-window`,
      );
      const at = w.body.baseBackups.find((b) => b.backupId === i2.id)!.consistentAt;
      const dir = path.join(work, 'combined');
      const port = await freePort();
      onCleanup(async () => {
        if (existsSync(path.join(dir, 'postmaster.pid')))
          execFileSync('runuser', [
            '-u',
            'postgres',
            '--',
            path.join(postgresBinDir(), 'pg_ctl'),
            '-D',
            dir,
            '-m',
            'immediate',
            'stop',
          ]);
      });
      const r = await cp.api<Job>('POST', `/api/v1/targets/${targetId}/restore`, {
        pointInTime: new Date(new Date(at).getTime() + 1000).toISOString(),
        dataDirectory: dir,
        port,
      });
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      const j = await waitJob(cp, r.body.id, 300_000);
      const logs = await jobLogs(cp, j.id);
      expect(j.state, `${JSON.stringify(j.error)}\n${logs}`).toBe('succeeded');
      expect(logs).toContain('combining 3 base backups');
      const rows = await query<{ n: number }>(
        `postgres://postgres@127.0.0.1:${port}/bench`,
        'SELECT n FROM marker',
      );
      expect(rows.map((x) => x.n)).toEqual([1]);
    }, 400_000);

    it('retention keeps the backups a kept incremental one is built on', async () => {
      const p = await cp.api('PATCH', `/api/v1/targets/${targetId}`, {
        options: { retention: { keepLast: 2 } },
      });
      expect(p.status).toBe(200);
      // The newest two are the last full one and an incremental on it; everything before goes.
      const newest = await backup();
      expect(newest.meta.engineMeta.parentBackupId).toBe(backups[3]!.id);
      await waitFor(
        async () => {
          const list = await cp.api<{ items: { id: string }[] }>('GET', `/api/v1/backups?target=${targetId}`);
          return list.body.items.length === 2 ? list.body.items : undefined;
        },
        { timeoutMs: 60_000, what: 'the first chain retired' },
      );
    }, 300_000);
  },
);
