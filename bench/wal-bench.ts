/**
 * pnpm bench:wal — continuous WAL archiving under load, and a point-in-time restore against
 * PostgreSQL's own recovery from local files, in one run.
 *
 *   BENCH_WAL_SCALE    pgbench scale (default 20)
 *   BENCH_WAL_RATES    comma-separated pgbench -R rates, 0 = unthrottled (default 200,800,3200,0)
 *   BENCH_WAL_SECONDS  seconds per rate (default 20)
 *
 * A physical target on its own PostgreSQL 15 cluster, archived by the agent to local disk
 * (walSwitchSeconds 60, so segments are full). The last phase, `bulk`, is not pgbench: INSERT …
 * SELECT of 1 KB rows as fast as the server takes them, the most WAL this machine makes. For each rate: pgbench's transactions/s, the WAL rate (MB/s) from
 * pg_current_wal_lsn(), the largest archive backlog seen (completed segments not yet archived,
 * sampled every 500 ms; 0 means the archive is within the segment being written), and the
 * agent's CPU and peak RSS.
 * Then: (r1) the agent's restore to the end of the archive (base backup + every WAL file:
 * fetch, authenticate, decrypt, replay) against (r0) PostgreSQL replaying the same span from
 * plain local files (a pg_basebackup -Fp taken at the same point, restore_command cp from a
 * directory a second pg_receivewal filled).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  cleanupAll,
  freePort,
  postgresBinDir,
  query,
  REPO_ROOT,
  startAgent,
  startControlPlane,
  startPostgres,
  trackDir,
  waitFor,
} from '@dbbackup/testkit';

const SCALE = Number(process.env.BENCH_WAL_SCALE ?? 20);
const RATES = (process.env.BENCH_WAL_RATES ?? '200,800,3200,0').split(',').map(Number);
const SECONDS = Number(process.env.BENCH_WAL_SECONDS ?? 20);
const SEG = 16 * 1024 * 1024;
const TICK = 100;
const isRoot = process.getuid?.() === 0;
const bin = postgresBinDir();

function procCpu(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const x = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(x[11]) + Number(x[12]) + Number(x[13]) + Number(x[14])) / TICK;
}
const procRss = (pid: number) =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
const lsnOf = (s: string) => {
  const [hi, lo] = s.split('/');
  return Number.parseInt(hi!, 16) * 2 ** 32 + Number.parseInt(lo!, 16);
};
const asPostgres = (cmd: string, args: string[]) =>
  isRoot ? execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args]) : execFileSync(cmd, args);
const postgresOwned = (d: string) => {
  mkdirSync(d, { recursive: true });
  if (isRoot) execFileSync('chown', ['-R', 'postgres', d]);
  return d;
};

async function main() {
  execFileSync('node', ['build.mjs'], { cwd: path.join(REPO_ROOT, 'agent'), stdio: 'ignore' });
  const [pg, cpPg] = await Promise.all([startPostgres(), startPostgres()]);
  const cp = await startControlPlane({
    databaseUrl: await cpPg.createDatabase('cp'),
    heartbeatIntervalMs: 5000,
  });
  const agent = await startAgent(cp);
  await waitFor(
    async () =>
      (await cp.api<{ status: string }>('GET', `/api/v1/agents/${agent.id}`)).body.status === 'online',
  );
  const work = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-walbench-')));
  chmodSync(work, 0o755);
  const storageId = (
    await cp.api<{ id: string }>('POST', '/api/v1/storage', {
      kind: 'local',
      name: 'disk',
      directory: path.join(work, 'store'),
    })
  ).body.id;
  await query(pg.url(), 'CREATE DATABASE bench');
  execFileSync(
    path.join(bin, 'pgbench'),
    ['-i', '-s', String(SCALE), '-q', '-h', '127.0.0.1', '-p', String(pg.port), '-U', 'postgres', 'bench'],
    { stdio: 'ignore' },
  );
  const t = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agent.id}/targets`, {
    engine: 'postgresql',
    name: 'bench',
    connection: { host: '127.0.0.1', port: pg.port, database: 'postgres', user: 'postgres' },
    storageId,
    options: { physical: true, walSwitchSeconds: 60 },
  });
  if (t.status !== 201) throw new Error(JSON.stringify(t.body));
  const targetId = t.body.id;
  const window = async () =>
    (
      await cp.api<{
        latest: string | null;
        walFiles: number;
        archiver: { lastArchived: string | null } | null;
      }>('GET', `/api/v1/targets/${targetId}/recovery-window`)
    ).body;
  // The first file: the archiver is running once a completed segment arrives (asked for here).
  await waitFor(
    async () => {
      await query(pg.url(), 'SELECT pg_switch_wal()');
      return (await window()).archiver?.lastArchived;
    },
    { timeoutMs: 120_000, intervalMs: 2000 },
  );

  // The local baseline's archive: a second receiver on its own slot, plain files.
  const localArchive = postgresOwned(path.join(work, 'local-archive'));
  const pgEnv = { ...process.env, PGHOST: '127.0.0.1', PGPORT: String(pg.port), PGUSER: 'postgres' };
  execFileSync(path.join(bin, 'pg_receivewal'), ['--create-slot', '--slot=bench_local'], { env: pgEnv });
  const receiver: ChildProcess = spawn(
    path.join(bin, 'pg_receivewal'),
    ['-D', localArchive, '--slot=bench_local', '--synchronous'],
    { env: pgEnv, stdio: 'ignore' },
  );
  const backup = await cp.api<{ id: string }>('POST', `/api/v1/targets/${targetId}/backups`);
  const localBase = postgresOwned(path.join(work, 'local-base'));
  asPostgres(path.join(bin, 'pg_basebackup'), [
    '-h',
    '127.0.0.1',
    '-p',
    String(pg.port),
    '-U',
    'postgres',
    '-D',
    localBase,
    '-Fp',
    '-X',
    'fetch',
    '--checkpoint=fast',
  ]);
  await waitFor(
    async () => {
      const j = (await cp.api<{ state: string }>('GET', `/api/v1/jobs/${backup.body.id}`)).body;
      return (
        j.state === 'succeeded' || (j.state === 'failed' && Promise.reject(new Error('base backup failed')))
      );
    },
    { timeoutMs: 600_000 },
  );

  const pid = agent.proc.child.pid!;
  const rows: string[] = [];
  for (const rate of [...RATES, -1]) rows.push(await phase(rate, pg.port, pid, targetId, cp));
  // The same span for both restores: a segment switch, archived by the agent and by the local receiver.
  const sw = (await query<{ l: string }>(pg.url(), 'SELECT pg_switch_wal()::text AS l'))[0]!.l;
  const last = lsnOf(sw) / SEG;
  const name = `00000001${Math.floor(last / 256)
    .toString(16)
    .toUpperCase()
    .padStart(8, '0')}${(Math.floor(last) % 256).toString(16).toUpperCase().padStart(8, '0')}`;
  await waitFor(async () => ((await window()).archiver?.lastArchived ?? '') >= name, {
    timeoutMs: 1_800_000,
    intervalMs: 500,
  });
  await waitFor(async () => existsSync(path.join(localArchive, name)), {
    timeoutMs: 600_000,
    intervalMs: 200,
  });
  receiver.kill('SIGTERM');

  const r1 = await agentRestore(cp, targetId, work);
  // pg_receivewal ran as this process's user: the archive is handed to the postgres user that replays it.
  if (isRoot) execFileSync('chown', ['-R', 'postgres', localArchive]);
  const r0 = await localRestore(localBase, localArchive);
  const w = await window();
  console.log(
    `\nWAL archiving, pgbench scale ${SCALE}, ${SECONDS} s a rate, agent → local disk (walSwitchSeconds 60)`,
  );
  console.log('  rate (tps asked)  tps done   WAL MB/s   max backlog (segs)   agent cpu %   agent RSS MB');
  for (const r of rows) console.log(r);
  console.log(
    `\nrestore of the base backup + ${w.walFiles} WAL files (${((w.walFiles * SEG) / 1024 ** 3).toFixed(2)} GB of WAL):`,
  );
  console.log(
    `  (r0) PostgreSQL from plain local files     ${r0.s.toFixed(1)} s   (redo done at ${r0.redo})`,
  );
  console.log(
    `  (r1) the agent (fetch, decrypt, replay)     ${r1.s.toFixed(1)} s   (redo done at ${r1.redo})   r1/r0 = ${(r1.s / r0.s).toFixed(2)}`,
  );
  console.log(`       ${r1.phases}`);
  const events = (
    await cp.api<{ items: { type: string; rejected?: string }[] }>(
      'GET',
      `/api/v1/agents/${agent.id}/events?limit=1000`,
    )
  ).body.items;
  const refused = events.filter((e) => e.rejected);
  console.log(`\nagent events seen: ${events.length}, refused by the control plane: ${refused.length}`);
  for (const e of refused.slice(0, 5)) console.log(`  ${e.type}: ${e.rejected}`);
  await cleanupAll();
}

/** One load level: pgbench at `rate`, the WAL position and the archive's end sampled every 500 ms. */
async function phase(
  rate: number,
  port: number,
  pid: number,
  targetId: string,
  cp: Awaited<ReturnType<typeof startControlPlane>>,
) {
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const lsn = async () =>
    lsnOf((await query<{ l: string }>(url, 'SELECT pg_current_wal_lsn()::text AS l'))[0]!.l);
  /** Completed segments not yet archived: the server's current segment minus the newest archived one, less the open one. */
  const backlog = async (at: number) => {
    const w = (
      await cp.api<{ archiver: { lastArchived: string | null } | null }>(
        'GET',
        `/api/v1/targets/${targetId}/recovery-window`,
      )
    ).body;
    const n = w.archiver?.lastArchived;
    const last = n ? Number.parseInt(n.slice(8, 16), 16) * 256 + Number.parseInt(n.slice(16), 16) : 0;
    return Math.max(0, Math.floor(at / SEG) - last - 1);
  };
  /** The benchmarked cluster, for pgbench and psql alike. */
  const conn = ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres'];
  const args = [
    '-T',
    String(SECONDS),
    '-c',
    '4',
    '-j',
    '2',
    '-n',
    ...conn,
    ...(rate ? ['-R', String(rate)] : []),
    'bench',
  ];
  const cpu0 = procCpu(pid);
  const l0 = await lsn();
  const t0 = Date.now();
  let out = '';
  const bulkSql = `DO $$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN
    WHILE clock_timestamp() < t0 + interval '${SECONDS} seconds' LOOP
      INSERT INTO bulk SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, 20000) g; COMMIT;
    END LOOP; END $$;`;
  const bench =
    rate < 0
      ? spawn(
          path.join(bin, 'psql'),
          [...conn, '-c', 'CREATE TABLE IF NOT EXISTS bulk (id int, v text)', '-c', bulkSql, 'bench'],
          { stdio: ['ignore', 'pipe', 'ignore'] },
        )
      : spawn(path.join(bin, 'pgbench'), args, { stdio: ['ignore', 'pipe', 'ignore'] });
  bench.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const done = new Promise((r) => bench.once('close', r));
  let maxLag = 0;
  let peakRss = 0;
  let running = true;
  void done.then(() => {
    running = false;
  });
  while (running) {
    await new Promise((r) => setTimeout(r, 500));
    maxLag = Math.max(maxLag, await backlog(await lsn()));
    peakRss = Math.max(peakRss, procRss(pid));
  }
  const secs = (Date.now() - t0) / 1000;
  const walMb = ((await lsn()) - l0) / 1024 ** 2 / secs;
  const cpu = ((procCpu(pid) - cpu0) / secs) * 100;
  const tps = /tps = ([\d.]+)/.exec(out)?.[1]?.replace(/\.\d+$/, '') ?? '-';
  return `  ${(rate < 0 ? 'bulk' : rate || 'max').toString().padStart(16)}  ${tps.padStart(8)}  ${walMb.toFixed(1).padStart(9)}  ${String(maxLag).padStart(19)}  ${cpu.toFixed(0).padStart(12)}  ${peakRss.toFixed(0).padStart(13)}`;
}

/** The agent's restore of the whole archive into a new directory, timed from the request to the job's end. */
async function agentRestore(
  cp: Awaited<ReturnType<typeof startControlPlane>>,
  targetId: string,
  work: string,
) {
  await waitFor(
    async () => {
      const w = (
        await cp.api<{ latest: string | null }>('GET', `/api/v1/targets/${targetId}/recovery-window`)
      ).body;
      return w.latest && Date.now() - new Date(w.latest).getTime() < 15_000;
    },
    { timeoutMs: 120_000 },
  );
  const dir = path.join(postgresOwned(path.join(work, 'agent-restore-parent')), 'data');
  const t0 = Date.now();
  const r = await cp.api<{ id: string }>('POST', `/api/v1/targets/${targetId}/restore`, {
    latest: true,
    dataDirectory: dir,
    port: await freePort(),
  });
  if (r.status !== 202) throw new Error(JSON.stringify(r.body));
  await waitFor(
    async () => {
      const j = (await cp.api<{ state: string; error: unknown }>('GET', `/api/v1/jobs/${r.body.id}`)).body;
      if (j.state === 'failed') throw new Error(JSON.stringify(j.error));
      return j.state === 'succeeded';
    },
    { timeoutMs: 3_600_000, intervalMs: 200 },
  );
  const s = (Date.now() - t0) / 1000;
  asPostgres(path.join(bin, 'pg_ctl'), ['-D', dir, '-m', 'immediate', '-w', 'stop']);
  const logs = (
    await cp.api<{ items: { at: string; message: string }[] }>('GET', `/api/v1/jobs/${r.body.id}/logs`)
  ).body.items;
  const at = (re: RegExp) => Date.parse(logs.find((l) => re.test(l.message))?.at ?? '');
  const marks: [string, number][] = [
    ['unpack base', at(/^base backup unpacked/)],
    ['fetch WAL', at(/^fetched \d+ WAL/)],
    ['recover + check', at(/^PostgreSQL is running/)],
  ];
  let prev = t0;
  const parts = marks.map(([name, t]) => {
    const d = ((t - prev) / 1000).toFixed(1);
    prev = t;
    return `${name} ${d} s`;
  });
  const job = (await cp.api<{ result: { redoDoneAt?: string } }>('GET', `/api/v1/jobs/${r.body.id}`)).body;
  return { s, phases: `request→${parts.join(', ')}`, redo: job.result?.redoDoneAt ?? '?' };
}

/** PostgreSQL's own recovery of the plain base backup from the local archive, to its end. */
async function localRestore(base: string, archive: string) {
  writeFileSync(path.join(base, 'recovery.signal'), '');
  const port = await freePort();
  const conf = [
    `restore_command = 'cp "${archive}/%f" "%p"'`,
    "recovery_target_action = 'promote'",
    `port = ${port}`,
    'hot_standby = off',
    'archive_mode = off',
    `unix_socket_directories = '${base}'`,
  ];
  writeFileSync(
    path.join(base, 'postgresql.auto.conf'),
    `${readFileSync(path.join(base, 'postgresql.auto.conf'), 'utf8')}\n${conf.join('\n')}\n`,
  );
  if (isRoot) execFileSync('chown', ['-R', 'postgres', base]);
  chmodSync(base, 0o700);
  const t0 = Date.now();
  try {
    asPostgres(path.join(bin, 'pg_ctl'), [
      '-D',
      base,
      '-l',
      path.join(base, 'restore.log'),
      '-w',
      '-t',
      '3600',
      'start',
    ]);
  } catch (err) {
    const log = readFileSync(path.join(base, 'restore.log'), 'utf8').slice(-2000);
    throw new Error(`local recovery did not start: ${log}`, { cause: err });
  }
  await waitFor(async () => !existsSync(path.join(base, 'recovery.signal')) || undefined, {
    timeoutMs: 3_600_000,
    intervalMs: 100,
  });
  const s = (Date.now() - t0) / 1000;
  asPostgres(path.join(bin, 'pg_ctl'), ['-D', base, '-m', 'immediate', '-w', 'stop']);
  const redo = /redo done at ([0-9A-F]+\/[0-9A-F]+)/.exec(
    readFileSync(path.join(base, 'restore.log'), 'utf8'),
  )?.[1];
  return { s, redo: redo ?? '?' };
}

void main().catch(async (err) => {
  console.error(err);
  await cleanupAll();
  process.exit(1);
});
