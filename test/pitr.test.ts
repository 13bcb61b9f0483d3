import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type ControlPlane,
  cleanupAll,
  enrolAdversary,
  freePort,
  onCleanup,
  type PgServer,
  postgresBinDir,
  query,
  REPO_ROOT,
  type S3Server,
  startAgent,
  startPostgres,
  startS3,
  trackDir,
  waitFor,
} from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstSegmentOf, type Job, jobLogs, runBackup, s3Profile, waitJob } from './backup-support.js';
import { controlPlane, getAgent, getCommand } from './support.js';

type Window = {
  earliest: string | null;
  latest: string | null;
  ranges: { from: string; to: string }[];
  gaps: { missingFrom: string; missingTo: string }[];
  walFiles: number;
  archiver: { receiving: boolean; lastArchived: string | null; error: string | null } | null;
};

let cp: ControlPlane;
let s3: S3Server;
let pg: PgServer;
let agent: Awaited<ReturnType<typeof startAgent>>;
let storageId: string;
let work: string;
let pgbench: ChildProcess | undefined;

const isRoot = process.getuid?.() === 0;
const METRICS_TOKEN = 'pitr-metrics-token-0123456789';

/** Run a PostgreSQL program as the postgres user (as the restored clusters run). */
function asPostgres(tool: string, args: string[]) {
  const bin = path.join(postgresBinDir(), tool);
  return isRoot
    ? execFileSync('runuser', ['-u', 'postgres', '--', bin, ...args], { stdio: 'pipe' }).toString()
    : execFileSync(bin, args, { stdio: 'pipe' }).toString();
}

/** A new directory the postgres user may create a data directory in. */
function scratchParent(): string {
  const d = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-pitr-')));
  if (isRoot) execFileSync('chown', ['postgres', d]);
  return d;
}

const agentEnv = () => ({ DBBACKUP_RESTORE_DIRS: `${work}:/tmp` });

/** Chain drills' scratch data directories left in `work`, and servers running from any of them. */
function drillLeftovers() {
  const dirs = readdirSync(work).filter((d) => d.startsWith('dbbackup-drill-'));
  const servers = execFileSync('ps', ['-eo', 'args'])
    .toString()
    .split('\n')
    .filter((l) => l.includes(`${work}/dbbackup-drill-`));
  return [...dirs, ...servers];
}

/** A restored cluster is stopped when the tests end. */
function stopLater(dataDirectory: string) {
  onCleanup(async () => {
    if (existsSync(path.join(dataDirectory, 'postmaster.pid')))
      try {
        asPostgres('pg_ctl', ['-D', dataDirectory, '-m', 'immediate', '-w', 'stop']);
      } catch {}
  });
}

async function windowOf(targetId: string) {
  const r = await cp.api<Window>('GET', `/api/v1/targets/${targetId}/recovery-window`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body;
}

async function restore(targetId: string, body: Record<string, unknown>): Promise<Job> {
  const r = await cp.api<Job>('POST', `/api/v1/targets/${targetId}/restore`, body);
  expect(r.status, JSON.stringify(r.body)).toBe(202);
  return waitJob(cp, r.body.id, 240_000);
}

async function physicalTarget(name: string, server: PgServer, extra: Record<string, unknown> = {}) {
  await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'agent online' });
  return cp.api<{ id: string; detail?: string }>('POST', `/api/v1/agents/${agent.id}/targets`, {
    engine: 'postgresql',
    name,
    connection: { host: '127.0.0.1', port: server.port, database: 'postgres', user: 'postgres' },
    storageId,
    options: { physical: true, walSwitchSeconds: 5, ...extra },
  });
}

beforeAll(async () => {
  cp = await controlPlane({ env: { DBBACKUP_METRICS_TOKEN: METRICS_TOKEN } });
  [s3, pg] = await Promise.all([startS3(), startPostgres()]);
  // Restores and chain drills write under `work` (the first allowed directory, where drills make theirs).
  work = scratchParent();
  agent = await startAgent(cp, { env: agentEnv() });
  storageId = await s3Profile(cp, s3, 'pitr');
}, 120_000);

afterAll(async () => {
  pgbench?.kill('SIGKILL');
  await cleanupAll();
});

describe('point-in-time recovery of PostgreSQL (physical base backups + WAL archiving)', () => {
  let targetId: string;

  it('a physical target archives WAL continuously once created', async () => {
    const r = await physicalTarget('cluster', pg);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    targetId = r.body.id;
    await query(pg.url(), 'CREATE DATABASE bench');
    execFileSync(
      path.join(postgresBinDir(), 'pgbench'),
      ['-i', '-s', '2', '-q', '-h', '127.0.0.1', '-p', String(pg.port), '-U', 'postgres', 'bench'],
      { stdio: 'pipe' },
    );
    // The agent completes a segment every 5 s (walSwitchSeconds): WAL files arrive without a push.
    await explained(() =>
      waitFor(async () => (await windowOf(targetId)).archiver?.lastArchived, {
        timeoutMs: 60_000,
        what: 'first WAL file archived',
      }),
    );
    const w = await windowOf(targetId);
    expect(w.archiver?.receiving).toBe(true);
    expect(w.archiver?.error).toBeNull();
    // No base backup yet: nothing is restorable.
    expect(w.earliest).toBeNull();
    const m = await (
      await fetch(`${cp.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
    ).text();
    const lag = new RegExp(
      `dbbackup_wal_archive_lag_seconds\\{target_id="${targetId}",target="cluster"\\} ([\\d.e+-]+)`,
    ).exec(m);
    expect(
      lag,
      m
        .split('\n')
        .filter((l) => l.includes('wal'))
        .join('\n'),
    ).not.toBeNull();
    expect(Number(lag![1])).toBeLessThan(60);
    expect(m).toMatch(
      new RegExp(`dbbackup_wal_last_archived_segment\\{target_id="${targetId}",target="cluster"\\} \\d+`),
    );
    expect(m).toMatch(
      new RegExp(`dbbackup_wal_spool_bytes\\{target_id="${targetId}",target="cluster"\\} \\d+`),
    );
  }, 120_000);

  it('restores to a time between two markers, and to the latest point, while pgbench writes', async () => {
    pgbench = writeLoad(40);
    const { job, backup } = await runBackup(cp, targetId);
    expect(job.state, `${JSON.stringify(job.error)}\n${await jobLogs(cp, job.id)}`).toBe('succeeded');
    const em = (backup!.meta as { engineMeta: Record<string, string> }).engineMeta;
    expect(em.kind).toBe('physical');
    expect(em.startLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(em.systemIdentifier).toMatch(/^\d+$/);

    await query(
      pg.url('bench'),
      'CREATE TABLE marker (n int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())',
    );
    await query(pg.url('bench'), 'INSERT INTO marker (n) VALUES (1)');
    await new Promise((r) => setTimeout(r, 1500));
    const t1 = (await query<{ t: Date }>(pg.url(), 'SELECT clock_timestamp() AS t'))[0]!.t;
    await new Promise((r) => setTimeout(r, 1500));
    await query(pg.url('bench'), 'INSERT INTO marker (n) VALUES (2)');
    const t2 = (await query<{ at: Date }>(pg.url('bench'), 'SELECT at FROM marker WHERE n = 2'))[0]!.at;
    await waitFor(
      async () => {
        const w = await windowOf(targetId);
        return w.latest && new Date(w.latest) > t2 ? w : undefined;
      },
      { timeoutMs: 60_000, what: 'WAL past marker 2 archived' },
    );
    pgbench.kill('SIGINT');

    const atT1 = path.join(work, 'at-t1');
    stopLater(atT1);
    const p1 = await freePort();
    const j1 = await restore(targetId, { pointInTime: t1.toISOString(), dataDirectory: atT1, port: p1 });
    expect(j1.state, `${JSON.stringify(j1.error)}\n${await jobLogs(cp, j1.id)}`).toBe('succeeded');
    const url1 = `postgres://postgres@127.0.0.1:${p1}/bench`;
    expect((await query<{ n: number }>(url1, 'SELECT n FROM marker ORDER BY n')).map((r) => r.n)).toEqual([
      1,
    ]);
    await expectPgbenchConsistent(url1);

    const latest = path.join(work, 'latest');
    stopLater(latest);
    const p2 = await freePort();
    const j2 = await restore(targetId, { latest: true, dataDirectory: latest, port: p2 });
    expect(j2.state, `${JSON.stringify(j2.error)}\n${await jobLogs(cp, j2.id)}`).toBe('succeeded');
    const url2 = `postgres://postgres@127.0.0.1:${p2}/bench`;
    expect((await query<{ n: number }>(url2, 'SELECT n FROM marker ORDER BY n')).map((r) => r.n)).toEqual([
      1, 2,
    ]);
    await expectPgbenchConsistent(url2);
    // The fetched WAL is gone from the restored data directory once it was promoted.
    expect(readdirSync(latest)).not.toContain('dbbackup_restore_wal');
  }, 400_000);

  it('survives kill -9 of the agent three times while WAL is produced: no gap, and a restore after the kills', async () => {
    pgbench = writeLoad(60);
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 3000));
      await agent.proc.kill('SIGKILL');
      await query(pg.url(), 'SELECT pg_switch_wal()');
      await new Promise((r) => setTimeout(r, 1000));
      agent.restart();
    }
    await markerAndLatest(3, 'after the kills');
  }, 300_000);

  it('a chain drill replays the base backup and all WAL in a scratch data directory, checks it and removes it', async () => {
    const r = await cp.api<Job>('POST', `/api/v1/targets/${targetId}/drills`);
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const j = await waitJob(cp, r.body.id, 240_000);
    expect(j.state, `${JSON.stringify(j.error)}\n${await jobLogs(cp, j.id)}`).toBe('succeeded');
    const res = j.result as {
      walFiles: number;
      replayedTo: string;
      databases: string[];
      rtoSeconds: number;
      dataAgeSeconds: number;
    };
    const w = await windowOf(targetId);
    // Every archived file after the base backup, replayed into the newest one.
    expect(res.walFiles).toBeGreaterThan(5);
    expect(res.walFiles).toBeLessThanOrEqual(w.walFiles + 1);
    expect(res.databases).toContain('bench');
    expect(res.rtoSeconds).toBeGreaterThan(0);
    expect(res.dataAgeSeconds).toBeLessThan(600);
    expect(drillLeftovers()).toEqual([]);
    const listed = await cp.api<{ items: Job[] }>('GET', `/api/v1/targets/${targetId}/drills`);
    expect(listed.body.items.map((x) => x.id)).toContain(j.id);
  }, 300_000);

  it('kill -9 of the agent mid-drill: the restart stops the drilled server and removes its data directory', async () => {
    await agent.proc.kill('SIGTERM');
    agent.restart({ ...agentEnv(), DBBACKUP_TEST_CRASH_POINT: 'during-drill' });
    await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'agent online' });
    const r = await cp.api<Job>('POST', `/api/v1/targets/${targetId}/drills`);
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    await agent.proc.exited;
    // Killed with the drilled server running from its scratch directory.
    const left = drillLeftovers();
    expect(left.filter((l) => l.startsWith('dbbackup-drill-'))).toHaveLength(1);
    expect(left.some((l) => l.includes('postgres'))).toBe(true);
    agent.restart(agentEnv());
    const job = await waitJob(cp, r.body.id, 120_000);
    expect(job.state).toBe('failed');
    expect(job.error?.code).toBe('interrupted');
    await waitFor(async () => drillLeftovers().length === 0, {
      timeoutMs: 60_000,
      what: 'drilled server stopped and its directory removed after the restart',
    });
  }, 300_000);

  it('keeps archiving while the control plane is away for a minute and storage refuses writes for 30 s', async () => {
    pgbench = writeLoad(60);
    const before = (await windowOf(targetId)).walFiles;
    await cp.stop();
    s3.faults.refuseWritesUntil = Date.now() + 30_000;
    await new Promise((r) => setTimeout(r, 60_000));
    await cp.restart();
    // Segments completed every 5 s meanwhile: spooled on the agent, uploaded once storage took writes again,
    // reported once the control plane was back.
    await waitFor(async () => (await windowOf(targetId)).walFiles >= before + 6, {
      timeoutMs: 60_000,
      intervalMs: 500,
      what: 'the WAL of the outage reported',
    });
    await markerAndLatest(4, 'after the outage');
  }, 400_000);

  it('a WAL file deleted from the bucket: the chain check finds it, wal_gap fires, restores after it are refused and before it succeed', async () => {
    pgbench = writeLoad(60);
    await query(pg.url('bench'), 'INSERT INTO marker (n) VALUES (5)');
    const at5 = (await query<{ at: Date }>(pg.url('bench'), 'SELECT at FROM marker WHERE n = 5'))[0]!.at;
    await waitFor(
      async () => {
        const w = await windowOf(targetId);
        return w.latest && new Date(w.latest).getTime() > at5.getTime() + 12_000 ? w : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 500, what: 'WAL well past marker 5' },
    );
    pgbench.kill('SIGINT');
    const before = await windowOf(targetId);
    expect(before.gaps).toEqual([]);
    const walObjects = listObjects(s3)
      .filter((k) => k.includes('/postgresql-wal/') && /\/[0-9A-F]{24}_[0-9a-f]{8}\.zst\.enc$/.test(k))
      .sort();
    const victim = walObjects[walObjects.length - 3]!;
    const victimName = /\/([0-9A-F]{24})_/.exec(victim)![1]!;
    rmSync(path.join(s3.directory, s3.bucket, `${victim}._S3rver_object`));

    // A chain drill before anything noticed: it cannot replay past the missing file, fails naming it,
    // and drill_failed fires.
    const d = await cp.api<Job>('POST', `/api/v1/targets/${targetId}/drills`);
    expect(d.status, JSON.stringify(d.body)).toBe(202);
    const dj = await waitJob(cp, d.body.id, 240_000);
    expect(dj.state).toBe('failed');
    expect(dj.error?.message).toContain(victimName);
    expect(drillLeftovers()).toEqual([]);
    const drillAlert = (
      await cp.api<{ items: { kind: string; state: string }[] }>('GET', `/api/v1/alerts?target=${targetId}`)
    ).body.items.find((a) => a.kind === 'drill_failed');
    expect(drillAlert?.state).toBe('firing');

    const v = await cp.api<Job>('POST', `/api/v1/targets/${targetId}/verify-chain`);
    expect(v.status, JSON.stringify(v.body)).toBe(202);
    const vj = await waitJob(cp, v.body.id, 120_000);
    expect(vj.state, JSON.stringify(vj.error)).toBe('succeeded');
    expect((vj.result as { missing: string[] }).missing).toEqual([victimName]);

    const after = await windowOf(targetId);
    expect(after.gaps.map((g) => g.missingFrom)).toEqual([victimName]);
    const alerts = (
      await cp.api<{ items: { kind: string; state: string; message: string }[] }>(
        'GET',
        `/api/v1/alerts?target=${targetId}`,
      )
    ).body.items;
    const gap = alerts.find((a) => a.kind === 'wal_gap' && a.state === 'firing');
    expect(gap?.message).toContain(victimName);

    const refused = await cp.api<{ detail: string }>('POST', `/api/v1/targets/${targetId}/restore`, {
      pointInTime: before.latest,
      dataDirectory: path.join(work, 'after-gap'),
    });
    expect(refused.status).toBe(422);
    expect(refused.body.detail).toContain(`missing from ${victimName}`);
    expect(existsSync(path.join(work, 'after-gap'))).toBe(false);

    const until = new Date(
      (after as unknown as { gaps: { restorableUntil: string }[] }).gaps[0]!.restorableUntil,
    );
    const dir = path.join(work, 'before-gap');
    stopLater(dir);
    const port = await freePort();
    // Through the CLI, as a DBA would: the window (exit 1 while it has a gap), then the restore.
    const shown = await cli(['recovery-window', 'cluster']);
    expect(shown.code, shown.err).toBe(1);
    expect(shown.out).toContain(`gap: ${victimName}`);
    const at = new Date(until.getTime() - 1000).toISOString();
    const ran = await cli([
      'restore',
      'cluster',
      '--data-dir',
      dir,
      '--to-time',
      at,
      '--port',
      String(port),
      '--wait',
    ]);
    expect(ran.code, `${ran.out}\n${ran.err}`).toBe(0);
    expect(ran.out + ran.err).toContain(`PostgreSQL runs on port ${port}`);
    const markers = (
      await query<{ n: number }>(
        `postgres://postgres@127.0.0.1:${port}/bench`,
        'SELECT n FROM marker ORDER BY n',
      )
    ).map((r) => r.n);
    expect(markers[0]).toBe(1);
    await expectPgbenchConsistent(`postgres://postgres@127.0.0.1:${port}/bench`);
  }, 400_000);

  it('retention keeps what recovery needs: a new base backup with keepLast 1 retires the old chain and its WAL, and the gap with it', async () => {
    // Incremental base backups asked of PostgreSQL 15: the base backup is full, and its log says why.
    const p = await cp.api('PATCH', `/api/v1/targets/${targetId}`, {
      options: { retention: { keepLast: 1 }, incrementalFullEvery: 3 },
    });
    expect(p.status, JSON.stringify(p.body)).toBe(200);
    const { job, backup } = await runBackup(cp, targetId);
    const logs = await jobLogs(cp, job.id);
    expect(job.state, `${JSON.stringify(job.error)}\n${logs}`).toBe('succeeded');
    const em = (backup!.meta as { engineMeta: Record<string, string> }).engineMeta;
    const major = Math.floor(Number(em.serverVersionNum) / 10000);
    if (major < 17) {
      expect(logs).toContain(
        `full base backup: incremental base backups need PostgreSQL 17 or newer (server ${major}`,
      );
      expect(em.incremental).toBeUndefined();
    }
    const firstNeeded = firstSegmentOf(em);
    const w = (
      await waitFor(
        async () => {
          const x = await windowOf(targetId);
          return x.gaps.length === 0 && (x as unknown as { baseBackups: unknown[] }).baseBackups.length === 1
            ? x
            : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 500, what: 'the old chain retired' },
      )
    ).value;
    expect(new Date(w.earliest!).getTime()).toBeGreaterThan(Date.now() - 120_000);
    const walInBucket = () =>
      listObjects(s3)
        .filter((k) => /\/[0-9A-F]{24}_[0-9a-f]{8}\.zst\.enc$/.test(k))
        .map((k) => /\/([0-9A-F]{24})_/.exec(k)![1]!);
    // The archive is uploaded apart from the base backup, one file at a time and in order: wait
    // until it holds the new backup's first segment (a loaded machine can be seconds behind).
    await waitFor(async () => walInBucket().some((n) => n >= firstNeeded), {
      timeoutMs: 60_000,
      what: `WAL from ${firstNeeded} archived`,
    });
    // A segment completed just before the new base backup may arrive after that retention run
    // listed the bucket: the next run (daily, or this cleanup) removes it.
    const cleanup = await cp.api<{ commandId: string }>('POST', `/api/v1/targets/${targetId}/cleanup`, {
      olderThan: '1d',
    });
    expect(cleanup.status, JSON.stringify(cleanup.body)).toBe(202);
    await waitFor(async () => (await getCommand(cp, cleanup.body.commandId)).state === 'succeeded', {
      timeoutMs: 60_000,
      what: 'cleanup',
    });
    const left = walInBucket();
    expect(left.length).toBeGreaterThan(0);
    expect(left.filter((n) => n < firstNeeded)).toEqual([]);
    // The retention preview reads the same rule off the catalogue: WAL before the first segment
    // of the base backup left goes with the old chain; once the agent's prune is applied, none is left.
    type WalPreview = { wal: { before: string; files: number; bytes: number } | null };
    const preview = () =>
      cp.api<WalPreview>('GET', `/api/v1/targets/${targetId}/retention/preview?keepLast=1`);
    expect((await preview()).body.wal?.before).toBe(firstNeeded);
    await waitFor(async () => (await preview()).body.wal?.files === 0, {
      timeoutMs: 30_000,
      what: 'no catalogued WAL older than the base backup left',
    });
    const alerts = (
      await cp.api<{ items: { kind: string; state: string }[] }>('GET', `/api/v1/alerts?target=${targetId}`)
    ).body.items;
    expect(alerts.filter((a) => a.kind === 'wal_gap' && a.state === 'firing')).toEqual([]);
  }, 200_000);

  it('a hostile agent cannot put WAL into another agent’s archive, report its state, prune it, or carry its keys', async () => {
    const a = await enrolAdversary(cp, 'wal-adversary');
    await a.connect();
    const before = (await windowOf(targetId)).walFiles;
    const realMeta = listObjects(s3).find(
      (k) => k.includes('/postgresql-wal/') && /_[0-9a-f]{8}\.zst\.enc\.meta\.json$/.test(k),
    )!;
    const stolen = JSON.parse(
      readFileSync(path.join(s3.directory, s3.bucket, `${realMeta}._S3rver_object`), 'utf8'),
    ) as Record<string, unknown>;
    const forged: Record<string, unknown> = {
      ...stolen,
      type: 'wal.archived',
      name: '0000000100000000000000F0',
    };
    for (const k of [
      'version',
      'agentId',
      'walBytes',
      'compressAlgo',
      'encryptAlgo',
      'segmentBytesEncrypted',
    ])
      delete forged[k];
    const rejected = async (seq: number, reason: RegExp) => {
      const ev = (
        await cp.api<{ items: { seq: number; rejected?: string }[] }>(
          'GET',
          `/api/v1/agents/${a.agentId}/events`,
        )
      ).body.items.find((e) => e.seq === seq);
      expect(ev?.rejected, `event ${seq}`).toMatch(reason);
    };
    let seq = a.seq;
    await a.event(forged);
    await rejected(seq, /is not a target of this agent/);
    seq = a.seq;
    await a.event({ type: 'wal.pruned', targetId, before: 'FFFFFFFF0000000000000000', files: 99 });
    await rejected(seq, /is not a target of this agent/);
    seq = a.seq;
    await a.event({
      type: 'wal.status',
      targetId,
      receiving: false,
      spoolFiles: 0,
      spoolBytes: 0,
      spoolLimitBytes: 1,
      slotRetainedBytes: null,
      lastArchived: null,
      error: 'forged',
      at: new Date().toISOString(),
    });
    await rejected(seq, /is not a target of this agent/);
    // Its own physical target, with a real WAL file's key (bound to another agent and target).
    const own = await cp.api<{ id: string }>('POST', `/api/v1/agents/${a.agentId}/targets`, {
      engine: 'postgresql',
      name: 'mine',
      connection: { host: '127.0.0.1', port: pg.port, database: 'postgres', user: 'postgres' },
      storageId,
      options: { physical: true },
    });
    expect(own.status, JSON.stringify(own.body)).toBe(201);
    const ownKey = String(stolen.objectKey)
      .replace('/postgresql-wal/cluster/', '/postgresql-wal/mine/')
      .replace(/\/[^/]+\/[^/]+$/, '/00000001/0000000100000000000000F0_0badf00d.zst.enc')
      .replace(/\/[^/]+\/postgresql-wal\//, '/wal-adversary/postgresql-wal/');
    seq = a.seq;
    await a.event({ ...forged, targetId: own.body.id, objectKey: ownKey });
    await rejected(seq, /data key belongs to/);
    // Nothing it sent was catalogued, and nothing was pruned: the real agent may still be
    // archiving, so the count can only have grown.
    const w = await windowOf(targetId);
    expect(w.walFiles).toBeGreaterThanOrEqual(before);
    expect(
      await query(cp.databaseUrl, 'SELECT name FROM wal_files WHERE agent_id = $1 OR target_id = $2', [
        a.agentId,
        own.body.id,
      ]),
    ).toEqual([]);
    expect(w.archiver?.error).toBeNull();
    expect((await windowOf(own.body.id)).walFiles).toBe(0);
    a.close();
  }, 120_000);

  it('refuses what it cannot do before anything is written', async () => {
    const w = await windowOf(targetId);
    const before = new Date(new Date(w.earliest!).getTime() - 3_600_000).toISOString();
    const early = await cp.api<{ detail: string }>('POST', `/api/v1/targets/${targetId}/restore`, {
      pointInTime: before,
      dataDirectory: path.join(work, 'too-early'),
    });
    expect(early.status).toBe(422);
    expect(early.body.detail).toContain('outside the recovery window');
    expect(existsSync(path.join(work, 'too-early'))).toBe(false);

    for (const dataDirectory of [
      'relative/dir',
      `${work}/x; rm -rf /`,
      `${work}/../etc`,
      '/',
      `${work}/$(id)`,
    ]) {
      const r = await cp.api('POST', `/api/v1/targets/${targetId}/restore`, { latest: true, dataDirectory });
      expect(r.status, dataDirectory).toBe(422);
    }
    const two = await cp.api('POST', `/api/v1/targets/${targetId}/restore`, {
      latest: true,
      lsn: '0/0',
      dataDirectory: path.join(work, 'y'),
    });
    expect(two.status).toBe(422);

    // A place on the host this agent does not allow restores into: refused, nothing made there.
    const etc = `/etc/dbbackup-pitr-${path.basename(work)}`;
    const far = await restore(targetId, { latest: true, dataDirectory: etc, port: await freePort() });
    expect(far.state).toBe('failed');
    expect(far.error?.message).toContain('DBBACKUP_RESTORE_DIRS');
    expect(existsSync(etc)).toBe(false);

    const used = path.join(work, 'not-empty');
    execFileSync('mkdir', ['-p', used]);
    writeFileSync(path.join(used, 'keep.txt'), 'mine');
    const j = await restore(targetId, { latest: true, dataDirectory: used, port: await freePort() });
    expect(j.state).toBe('failed');
    expect(j.error?.message).toContain('not empty');
    expect(readdirSync(used)).toEqual(['keep.txt']);

    const logical = await cp.api<{ detail: string }>(
      'POST',
      `/api/v1/backups/${(w as unknown as { baseBackups: { backupId: string }[] }).baseBackups[0]!.backupId}/restore`,
      { database: 'x', conflict: 'create' },
    );
    expect(logical.status).toBe(409);
    expect(logical.body.detail).toContain('point in time');

    // Incremental chains are for physical targets, two to 32 base backups long.
    for (const [options, why] of [
      [{ incrementalFullEvery: 3 }, 'need options.physical'],
      [{ physical: true, incrementalFullEvery: 1 }, 'incrementalFullEvery'],
      [{ physical: true, incrementalFullEvery: 33 }, 'incrementalFullEvery'],
    ] as const) {
      const r = await cp.api<{ detail: string }>('POST', `/api/v1/agents/${agent.id}/targets`, {
        engine: 'postgresql',
        name: 'bad-chain',
        connection: { host: '127.0.0.1', port: pg.port, database: 'postgres', user: 'postgres' },
        storageId,
        options,
      });
      expect(r.status, JSON.stringify(r.body)).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
      expect(JSON.stringify(r.body)).toContain(why);
    }
  }, 120_000);

  it('a cluster without wal_level = replica is refused with the fix named', async () => {
    const minimal = await startPostgres({ settings: { wal_level: 'minimal', max_wal_senders: '0' } });
    const r = await physicalTarget('minimal', minimal);
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect(JSON.stringify(r.body)).toContain("ALTER SYSTEM SET wal_level = 'replica'");
    const mysql = await cp.api('POST', `/api/v1/agents/${agent.id}/targets`, {
      engine: 'mysql',
      name: 'not-pg',
      connection: { host: '127.0.0.1', port: 3306, database: 'x' },
      storageId,
      options: { physical: true },
    });
    expect(mysql.status).toBe(422);
  }, 120_000);
});

/**
 * Write marker `n`, complete the segment, wait until the archive holds it with no gap,
 * and restore the latest point: every marker up to `n` is there and pgbench is consistent.
 */
async function markerAndLatest(n: number, label: string) {
  const targetId = (
    await cp.api<{ items: { id: string; name: string }[] }>('GET', `/api/v1/agents/${agent.id}/targets`)
  ).body.items.find((t) => t.name === 'cluster')!.id;
  await query(pg.url('bench'), `INSERT INTO marker (n) VALUES (${n})`);
  const at = (await query<{ at: Date }>(pg.url('bench'), `SELECT at FROM marker WHERE n = ${n}`))[0]!.at;
  await explained(() =>
    waitFor(
      async () => {
        const w = await windowOf(targetId);
        return w.latest && new Date(w.latest) > at ? w : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 500, what: `WAL past marker ${n} archived (${label})` },
    ),
  );
  pgbench?.kill('SIGINT');
  const w = await windowOf(targetId);
  expect(w.gaps, label).toEqual([]);
  expect(w.archiver?.error ?? null, label).toBeNull();
  const dir = path.join(work, `latest-${n}`);
  stopLater(dir);
  const port = await freePort();
  const j = await restore(targetId, { latest: true, dataDirectory: dir, port });
  expect(j.state, `${JSON.stringify(j.error)}\n${await jobLogs(cp, j.id)}`).toBe('succeeded');
  const url = `postgres://postgres@127.0.0.1:${port}/bench`;
  const want = Array.from({ length: n }, (_, i) => i + 1);
  expect((await query<{ n: number }>(url, 'SELECT n FROM marker ORDER BY n')).map((r) => r.n)).toEqual(want);
  await expectPgbenchConsistent(url);
  asPostgres('pg_ctl', ['-D', dir, '-m', 'immediate', '-w', 'stop']);
}

/** pgbench writing into `bench` at `rate` transactions a second until killed (or 10 minutes). */
function writeLoad(rate: number): ChildProcess {
  const args = [
    '-T',
    '600',
    '-c',
    '2',
    '-R',
    String(rate),
    '-n',
    '-h',
    '127.0.0.1',
    '-p',
    String(pg.port),
    '-U',
    'postgres',
    'bench',
  ];
  return spawn(path.join(postgresBinDir(), 'pgbench'), args, { stdio: 'ignore' });
}

/** pgbench's own invariant: every balance change is in the history, and all three balances agree. */
async function expectPgbenchConsistent(url: string) {
  const [r] = await query<{ a: string; t: string; b: string; h: string }>(
    url,
    `SELECT (SELECT sum(abalance) FROM pgbench_accounts)::text AS a, (SELECT sum(tbalance) FROM pgbench_tellers)::text AS t,
            (SELECT sum(bbalance) FROM pgbench_branches)::text AS b, (SELECT coalesce(sum(delta), 0) FROM pgbench_history)::text AS h`,
  );
  expect(r!.a).toBe(r!.h);
  expect(r!.t).toBe(r!.h);
  expect(r!.b).toBe(r!.h);
}

/** On failure, the agent's own lines about WAL archiving go with the error. */
async function explained<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const lines = agent.proc.lines.slice(-40);
    throw new Error(`${(err as Error).message}\nagent:\n${lines.join('\n')}`);
  }
}

/** The dbbackup CLI as a real process against the control plane. */
function cli(args: string[]) {
  const bin = path.join(REPO_ROOT, 'packages/cli/bin/dbbackup');
  return new Promise<{ code: number; out: string; err: string }>((resolve) => {
    execFile(
      bin,
      [...args, '--server', cp.url, '--token', cp.adminToken],
      { env: { PATH: process.env.PATH ?? '', HOME: work }, timeout: 300_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout, err: stderr }),
    );
  });
}

/** Every object key in the s3rver bucket (its store on disk). */
function listObjects(s3: S3Server): string[] {
  const root = path.join(s3.directory, s3.bucket);
  return (readdirSync(root, { recursive: true }) as string[])
    .filter((f) => f.endsWith('._S3rver_object'))
    .map((f) => f.slice(0, -'._S3rver_object'.length));
}
