/**
 * pnpm bench:backup [postgresql|mariadb] — the agent's backup and restore against the shell baseline, in one run.
 *
 * PostgreSQL (default):
 *   BENCH_SCALE      pgbench scale of the first database (default 100)
 *   BENCH_RANDOM_MB  size of the second, poorly compressible database (default 600)
 *
 * (a) pg_dump -Fc -Z0 | zstd -3 -T0 > file      (b) agent backup to local disk
 * (c) agent backup to s3rver                      (d) pg_restore from a local file into an empty database
 * (e) agent restore from local disk
 * (a2) pg_dump -Fc -Z0 | zstd -3 -T0 | age -r KEY | tee file | sha256sum: the same work as the agent
 *      (compress, encrypt to a public key, hash), when Debian's `age` is installed; b/a2 compares them.
 * Each database also prints one backup's phases from the request: dispatch, start (engine, tools,
 * storage), dump + upload (streamed together), commit (meta.json), report (success recorded).
 * Prints wall and CPU seconds, MB/s of table data, b/a and e/d, and the agent's idle and peak RSS.
 * BENCH_REPEAT (default 3): a/b and d/e run that many times, interleaved, and medians are compared.
 * BENCH_LOGS=1 prints each agent job's log with times from the request (where fixed time goes).
 * BENCH_GC=1 runs the agent with --trace-gc and prints each job's full and young collections.
 * BENCH_NODE_FLAGS adds Node flags to the agent's own (agent/node-flags), for experiments.
 *
 * MariaDB (`pnpm bench:backup mariadb`; BENCH_MARIA_MB, default 300, of sysbench-style rows):
 * (a) mariadb-dump --single-transaction db | zstd -3 -T0 > file   (b) agent backup to local disk
 * (c) agent backup to s3rver   (d) mariadb db2 < dump file   (e) agent restore from local disk
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type ControlPlane,
  cleanupAll,
  postgresBinDir,
  query,
  startAgent,
  startControlPlane,
  startMariaDb,
  startPostgres,
  startS3,
  trackDir,
  waitFor,
} from '@dbbackup/testkit';

const SCALE = Number(process.env.BENCH_SCALE ?? 100);
const RANDOM_MB = Number(process.env.BENCH_RANDOM_MB ?? 600);
const bin = postgresBinDir();
const TICK = 100; // clock ticks per second on Linux

type Run = { wall: number; cpu: number; peak?: number; ownCpu?: number; phases?: string };

/** CPU seconds of a process and its reaped children; `own`: of the process alone. */
function procCpu(pid: number, own = false): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  // utime stime cutime cstime: fields 14-17 (1-based) = index 11..14 after the command.
  const self = Number(fields[11]) + Number(fields[12]);
  return (own ? self : self + Number(fields[13]) + Number(fields[14])) / TICK;
}
function procRss(pid: number, key: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`${key}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) / 1024;
}

/**
 * This shared 2-core machine's speed drifts by tens of percent within minutes, so
 * each baseline and its agent counterpart run BENCH_REPEAT times (default 3),
 * interleaved (a b a b ...), and the medians are compared.
 */
const REPEAT = Math.max(1, Number(process.env.BENCH_REPEAT ?? 3));
const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
async function interleaved<R extends Run>(
  base: (i: number) => Promise<Run> | Run,
  agent: (i: number) => Promise<R>,
  extra?: (i: number) => Promise<Run> | Run,
): Promise<{ base: Run; agent: R; ratios: number[]; extra?: Run; extraRatios?: number[] }> {
  const bs: Run[] = [];
  const as: R[] = [];
  const xs: Run[] = [];
  // Each run starts once the disk has taken what the last one wrote (untimed `sync`): the shell
  // pipelines leave their output in the page cache, and its writeback would otherwise land in
  // whichever run came next (the agent fsyncs its own object before it counts as stored).
  const settled = async <T>(run: () => Promise<T> | T) => {
    execFileSync('sync');
    return await run();
  };
  for (let i = 0; i < REPEAT; i++) {
    bs.push(await settled(() => base(i)));
    if (extra) xs.push(await settled(() => extra(i)));
    as.push(await settled(() => agent(i)));
  }
  const med = <T extends Run>(rs: T[]): T => ({
    ...rs[rs.length - 1]!,
    wall: median(rs.map((r) => r.wall)),
    cpu: median(rs.map((r) => r.cpu)),
    ...(rs[0]!.ownCpu === undefined ? {} : { ownCpu: median(rs.map((r) => r.ownCpu ?? 0)) }),
    ...(rs[0]!.peak === undefined ? {} : { peak: Math.max(...rs.map((r) => r.peak ?? 0)) }),
  });
  return {
    base: med(bs),
    agent: med(as),
    ratios: as.map((r, i) => r.wall / bs[i]!.wall),
    ...(extra ? { extra: med(xs), extraRatios: as.map((r, i) => r.wall / xs[i]!.wall) } : {}),
  };
}

/**
 * The DBA's own pipeline doing the agent's work (compress, encrypt to a public key, hash),
 * with Debian's `age`: a key made for this run, or undefined when age is not installed.
 */
function ageRecipient(dir: string): string | undefined {
  if (spawnSync('age-keygen', ['--version']).status !== 0) {
    console.log('age is not installed (apt-get install age): the age pipeline baseline is skipped');
    return undefined;
  }
  execFileSync('age-keygen', ['-o', `${dir}/age.key`], { stdio: 'ignore' });
  return execFileSync('age-keygen', ['-y', `${dir}/age.key`])
    .toString()
    .trim();
}

function shell(script: string, env: Record<string, string>): Run {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('bash', ['-c', `set -o pipefail; ${script}; times`], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${script}: ${r.stderr}`);
  // `times` prints shell then children user/sys as "XmY.YYYs XmY.YYYs".
  const lines = r.stdout.trim().split('\n');
  const child = lines[lines.length - 1]!.match(/(\d+)m([\d.]+)s/g)!.map((x) => {
    const m = /(\d+)m([\d.]+)s/.exec(x)!;
    return Number(m[1]) * 60 + Number(m[2]);
  });
  return { wall, cpu: child.reduce((a, b) => a + b, 0) };
}

async function pgMain() {
  const pg = await startPostgres();
  const port = String(pg.port);
  const pgEnv = { PGHOST: '127.0.0.1', PGPORT: port, PGUSER: 'postgres' };
  const psql = (db: string, sql: string) =>
    execFileSync(`${bin}/psql`, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', db, '-c', sql], {
      env: { ...process.env, ...pgEnv },
    });

  console.log(`preparing: pgbench scale ${SCALE}, random ${RANDOM_MB} MB ...`);
  psql('postgres', 'CREATE DATABASE bench_pgbench');
  if (process.env.BENCH_ONLY !== 'random')
    execFileSync(`${bin}/pgbench`, ['-i', '-q', '-s', String(SCALE), 'bench_pgbench'], {
      env: { ...process.env, ...pgEnv },
      stdio: 'ignore',
    });
  psql('postgres', 'CREATE DATABASE bench_random');
  // sysbench-style rows: c char(120) and pad char(60) of random hex; ~250 bytes a row on disk.
  const rows = Math.round((RANDOM_MB * 1024 * 1024) / 250);
  psql(
    'bench_random',
    `CREATE TABLE sbtest1 (id serial PRIMARY KEY, k int NOT NULL, c char(120) NOT NULL, pad char(60) NOT NULL);
     INSERT INTO sbtest1 (k, c, pad) SELECT (random()*1e6)::int,
       substr(md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text), 1, 120),
       substr(md5(random()::text) || md5(random()::text), 1, 60) FROM generate_series(1, ${rows});`,
  );
  psql('bench_random', 'VACUUM ANALYZE sbtest1');

  const h = await harness(await pg.createDatabase('cp'));
  const recipient = ageRecipient(h.dir);
  const out: string[] = [];
  const only = process.env.BENCH_ONLY;
  for (const db of ['bench_pgbench', 'bench_random'].filter((d) => !only || d.endsWith(only))) {
    const size =
      Number(
        (await query<{ s: string }>(pg.url(db), 'SELECT pg_database_size(current_database()) AS s'))[0]!.s,
      ) /
      1024 /
      1024;
    const target = async (name: string, storageId: string) =>
      (
        await h.cp.api<{ id: string }>('POST', `/api/v1/agents/${h.agent.id}/targets`, {
          engine: 'postgresql',
          name,
          connection: { host: '127.0.0.1', port: pg.port, database: db, user: 'postgres' },
          storageId,
        })
      ).body.id;
    const tLocal = await target(`${db}-local`, h.local);
    const tS3 = await target(`${db}-s3`, h.s3p);

    const ab = await interleaved(
      () => shell(`${bin}/pg_dump -Fc -Z0 ${db} | zstd -3 -T0 -q > ${h.dir}/${db}.baseline.zst`, pgEnv),
      () => h.backupNow(tLocal),
      recipient
        ? () =>
            shell(
              `${bin}/pg_dump -Fc -Z0 ${db} | zstd -3 -T0 -q | age -r ${recipient} | tee ${h.dir}/${db}.baseline.age | sha256sum > /dev/null`,
              pgEnv,
            )
        : undefined,
    );
    const [a, b] = [ab.base, ab.agent];
    const c = await h.backupNow(tS3);
    execFileSync(`${bin}/pg_dump`, ['-Fc', '-Z0', '-f', `${h.dir}/${db}.plain.pgdump`, db], {
      env: { ...process.env, ...pgEnv },
    });
    const backupId = (b.result as { backupId: string }).backupId;
    const de = await interleaved(
      (i) => {
        psql('postgres', `CREATE DATABASE ${db}_d${i}`);
        return shell(`${bin}/pg_restore -d ${db}_d${i} ${h.dir}/${db}.plain.pgdump`, pgEnv);
      },
      (i) => h.restoreInto(backupId, `${db}_e${i}`),
    );
    const [d, e] = [de.base, de.agent];
    report(
      db,
      size,
      Number((b.result as { sizeBytes: number }).sizeBytes) / 1024 / 1024,
      [
        ['(a) pg_dump -Fc -Z0 | zstd -3 -T0', a],
        ['(b) agent backup -> local disk', b],
        ['(c) agent backup -> s3rver', c],
        ['(d) pg_restore from local file', d],
        ['(e) agent restore from local disk', e],
      ],
      out,
      [ab.ratios, de.ratios],
    );
    if (ab.extra) {
      const x = ab.extra;
      const fmt = (n: number) => n.toFixed(2).padStart(8);
      out.push(
        `  ${'(a2) … | zstd | age -r | tee | sha256sum'.padEnd(40)} ${fmt(x.wall)} ${fmt(x.cpu)} ${fmt(size / x.wall)}`,
      );
      out.push(
        `  b/a2 = ${(b.wall / x.wall).toFixed(3)}   (per run: ${ab.extraRatios?.map((r) => r.toFixed(2)).join(' ')}): the agent against the same work done by the DBA's pipeline`,
      );
    }
    out.push(`  one backup's phases (b, last run): ${b.phases}`);
  }
  out.push(
    `\nagent RSS: idle ${h.idleRss.toFixed(1)} MB, peak ${h.peak().toFixed(1)} MB (largest per-job VmHWM; dump tools are separate processes)`,
  );
  console.log(out.join('\n'));
  await h.agent.proc.kill('SIGTERM');
  await cleanupAll();
  await pg.stop();
}

/** Full (mark-compact) and young (scavenge) collections in --trace-gc lines: how many, and their pauses plus incremental marking steps. */
function gcSummary(lines: string[]): string {
  const sum = (kind: string) => {
    let n = 0;
    let ms = 0;
    for (const l of lines) {
      if (!l.includes(`: ${kind}`)) continue;
      n++;
      ms += Number(/MB, ([\d.]+) \//.exec(l)?.[1] ?? 0) + Number(/\+ ([\d.]+) ms in/.exec(l)?.[1] ?? 0);
    }
    return `${n} (${ms.toFixed(0)} ms)`;
  };
  return `mark-compact ${sum('Mark-Compact')}, scavenge ${sum('Scavenge')}`;
}

/** The control plane, an agent, storage profiles, and a way to time agent jobs. */
/**
 * Where one agent job's time went, from the request: dispatch (until the agent acknowledged
 * the command), start (until the dump was running: engine, tools, storage), dump + upload
 * (streamed together, until the data object was complete), commit (meta.json), report (until
 * the control plane recorded success) and seen (until this bench's poll saw it).
 */
async function phasesOf(cp: ControlPlane, jobId: string, postedAt: number): Promise<string> {
  const job = (
    await cp.api<{ commandId: string; result: { backupId?: string } | null }>('GET', `/api/v1/jobs/${jobId}`)
  ).body;
  // A backup's data object was complete at its meta.json's endTime.
  const backup = job.result?.backupId
    ? (await cp.api<{ meta?: { endTime?: string } }>('GET', `/api/v1/backups/${job.result.backupId}`)).body
    : undefined;
  const cmd = (await cp.api<Record<string, string | null>>('GET', `/api/v1/commands/${job.commandId}`)).body;
  const logs = (
    await cp.api<{ items: { at: string; message: string }[] }>('GET', `/api/v1/jobs/${jobId}/logs`)
  ).body.items;
  const at = (re: RegExp) => {
    const l = logs.find((x) => re.test(x.message));
    return l ? Date.parse(l.at) : Number.NaN;
  };
  const marks: [string, number][] = [
    ['dispatch', Date.parse(cmd.acknowledgedAt ?? '')],
    ['start', at(/^dumping /)],
    ['dump+upload', Date.parse(backup?.meta?.endTime ?? '')],
    ['commit', at(/^(backup committed|restored)/)],
    ['report', Date.parse(cmd.finishedAt ?? '')],
  ];
  let prev = postedAt;
  const parts: string[] = [];
  for (const [name, t] of marks) {
    if (Number.isNaN(t)) continue;
    parts.push(`${name} ${Math.round(Math.max(0, t - prev))}`);
    prev = t;
  }
  return `${parts.join(', ')} ms`;
}

async function harness(databaseUrl: string) {
  const cp = await startControlPlane({ databaseUrl, heartbeatIntervalMs: 5000 });
  const s3 = await startS3();
  // BENCH_PROFILE=dir writes a V8 CPU profile of the agent there (on its graceful exit at the end).
  const profileDir = process.env.BENCH_PROFILE;
  const nodeFlags = [
    profileDir ? `--cpu-prof --cpu-prof-dir=${profileDir}` : '',
    process.env.BENCH_GC ? '--trace-gc' : '',
    process.env.BENCH_NODE_FLAGS ?? '',
  ]
    .filter(Boolean)
    .join(' ');
  const agent = await startAgent(cp, nodeFlags ? { env: { DBBACKUP_NODE_FLAGS: nodeFlags } } : {});
  await waitFor(
    async () =>
      (await cp.api<{ status: string }>('GET', `/api/v1/agents/${agent.id}`)).body.status === 'online',
  );
  await new Promise((r) => setTimeout(r, 3000));
  const pid = agent.proc.child.pid!;
  const idleRss = procRss(pid, 'VmRSS');
  const dir = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-bench-')));
  const local = (
    await cp.api<{ id: string }>('POST', '/api/v1/storage', { kind: 'local', name: 'disk', directory: dir })
  ).body.id;
  const s3p = (
    await cp.api<{ id: string }>('POST', '/api/v1/storage', {
      kind: 's3',
      name: 's3',
      endpoint: s3.endpoint,
      bucket: s3.bucket,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    })
  ).body.id;
  let maxPeak = procRss(pid, 'VmHWM');
  async function agentJob(
    post: () => Promise<{ id: string }>,
  ): Promise<Run & { result: Record<string, unknown> }> {
    const cpu0 = procCpu(pid);
    const own0 = procCpu(pid, true);
    const gcFrom = agent.proc.lines.length;
    // Reset the peak-RSS counter, so each job's own peak can be read (Linux: clear_refs 5).
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    const t0 = process.hrtime.bigint();
    const job = await post();
    const { value } = await waitFor(
      async () => {
        const j = (
          await cp.api<{ state: string; result: Record<string, unknown>; error: unknown }>(
            'GET',
            `/api/v1/jobs/${job.id}`,
          )
        ).body;
        return ['succeeded', 'failed'].includes(j.state) ? j : undefined;
      },
      { timeoutMs: 3_600_000, intervalMs: 20 },
    );
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    // BENCH_LOGS=1 prints each job's log with times from the request, to see where fixed time goes.
    if (process.env.BENCH_LOGS) {
      const posted = Date.now() - wall * 1000;
      const logs = await cp.api<{ items: { at: string; message: string }[] }>(
        'GET',
        `/api/v1/jobs/${job.id}/logs`,
      );
      for (const l of logs.body.items)
        console.log(`    +${String(Date.parse(l.at) - posted).padStart(6)} ms  ${l.message.slice(0, 150)}`);
      console.log(`    +${String(Math.round(wall * 1000)).padStart(6)} ms  (seen finished by the bench)`);
    }
    if (value.state !== 'succeeded') throw new Error(`job failed: ${JSON.stringify(value.error)}`);
    const phases = await phasesOf(cp, job.id, Date.now() - wall * 1000);
    const peak = procRss(pid, 'VmHWM');
    maxPeak = Math.max(maxPeak, peak);
    if (process.env.BENCH_GC) console.log(`    gc: ${gcSummary(agent.proc.lines.slice(gcFrom))}`);
    return {
      wall,
      cpu: procCpu(pid) - cpu0,
      ownCpu: procCpu(pid, true) - own0,
      peak,
      result: value.result,
      phases,
    };
  }
  /** A backup of the target now, timed as an agent job. */
  const backupNow = (targetId: string) =>
    agentJob(async () => (await cp.api<{ id: string }>('POST', `/api/v1/targets/${targetId}/backups`)).body);
  /** A restore of the backup into a new database, timed as an agent job. */
  const restoreInto = (backupId: string, database: string) =>
    agentJob(
      async () =>
        (
          await cp.api<{ id: string }>('POST', `/api/v1/backups/${backupId}/restore`, {
            database,
            conflict: 'create',
          })
        ).body,
    );
  return {
    peak: () => Math.max(maxPeak, procRss(pid, 'VmHWM')),
    cp,
    agent,
    pid,
    idleRss,
    dir,
    local,
    s3p,
    backupNow,
    restoreInto,
  };
}

function report(
  title: string,
  size: number,
  stored: number,
  runs: [string, Run][],
  out: string[],
  [ba, ed]: [number[], number[]],
) {
  const fmt = (n: number) => n.toFixed(2).padStart(8);
  out.push(`\n${title}: database ${size.toFixed(0)} MB, agent backup stored ${stored.toFixed(1)} MB`);
  // cpu s: the tools' and the agent's together; agent cpu s: the agent process's own share of it.
  out.push(
    '                                           wall s    cpu s     MB/s  agent peak RSS MB  agent cpu s',
  );
  for (const [label, r] of runs)
    out.push(
      `  ${label.padEnd(40)} ${fmt(r.wall)} ${fmt(r.cpu)} ${fmt(size / r.wall)} ${r.peak === undefined ? '' : fmt(r.peak)}${r.ownCpu === undefined ? '' : `    ${fmt(r.ownCpu)}`}`,
    );
  const [a, b, c, d, e] = runs.map(([, r]) => r.wall) as [number, number, number, number, number];
  out.push(`  b/a = ${(b / a).toFixed(3)}   c/a = ${(c / a).toFixed(3)}   e/d = ${(e / d).toFixed(3)}`);
  if (ba.length > 1) {
    const list = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(' ');
    out.push(
      `  (medians of ${ba.length} interleaved runs; per run b/a: ${list(ba)}; e/d: ${list(ed)}; c ran once; each run starts after an untimed sync)`,
    );
  }
}

async function mariaMain() {
  const MB = Number(process.env.BENCH_MARIA_MB ?? 300);
  const pg = await startPostgres();
  const maria = await startMariaDb();
  const rows = Math.round((MB * 1024 * 1024) / 230);
  console.log(`preparing: MariaDB ${MB} MB of sysbench-style rows ...`);
  maria.sql(`CREATE DATABASE sbtest; USE sbtest;
    CREATE TABLE sbtest1 (id INT PRIMARY KEY, k INT NOT NULL, c CHAR(120) NOT NULL, pad CHAR(60) NOT NULL) ENGINE=InnoDB;
    INSERT INTO sbtest1 SELECT seq, FLOOR(RAND()*1000000),
      LEFT(CONCAT(MD5(RAND()), MD5(RAND()), MD5(RAND()), MD5(RAND())), 120), LEFT(CONCAT(MD5(RAND()), MD5(RAND())), 60)
      FROM seq_1_to_${rows};`);
  const size =
    Number(
      maria.sql(
        "SELECT SUM(data_length + index_length) FROM information_schema.tables WHERE table_schema = 'sbtest'",
      )[0]![0],
    ) /
    1024 /
    1024;
  const h = await harness(await pg.createDatabase('cp'));
  const target = async (name: string, storageId: string) =>
    (
      await h.cp.api<{ id: string }>('POST', `/api/v1/agents/${h.agent.id}/targets`, {
        engine: 'mysql',
        name,
        connection: { host: maria.socket, database: 'sbtest' },
        storageId,
      })
    ).body.id;
  const tLocal = await target('maria-local', h.local);
  const tS3 = await target('maria-s3', h.s3p);
  const ab = await interleaved(
    () =>
      shell(
        `mariadb-dump --socket=${maria.socket} --single-transaction sbtest | zstd -3 -T0 -q > ${h.dir}/maria.baseline.zst`,
        {},
      ),
    () => h.backupNow(tLocal),
  );
  const [a, b] = [ab.base, ab.agent];
  const c = await h.backupNow(tS3);
  execFileSync('sh', [
    '-c',
    `mariadb-dump --socket=${maria.socket} --single-transaction sbtest > ${h.dir}/maria.sql`,
  ]);
  const backupId = (b.result as { backupId: string }).backupId;
  const de = await interleaved(
    (i) => {
      maria.sql(`CREATE DATABASE sbtest_d${i}`);
      return shell(`mariadb --socket=${maria.socket} sbtest_d${i} < ${h.dir}/maria.sql`, {});
    },
    (i) => h.restoreInto(backupId, `sbtest_e${i}`),
  );
  const [d, e] = [de.base, de.agent];
  const out: string[] = [];
  report(
    'mariadb sbtest',
    size,
    Number((b.result as { sizeBytes: number }).sizeBytes) / 1024 / 1024,
    [
      ['(a) mariadb-dump --single-transaction | zstd', a],
      ['(b) agent backup -> local disk', b],
      ['(c) agent backup -> s3rver', c],
      ['(d) mariadb < dump file', d],
      ['(e) agent restore from local disk', e],
    ],
    out,
    [ab.ratios, de.ratios],
  );
  out.push(
    `\nagent RSS: idle ${h.idleRss.toFixed(1)} MB, peak ${h.peak().toFixed(1)} MB (largest per-job VmHWM)`,
  );
  console.log(out.join('\n'));
  await h.agent.proc.kill('SIGTERM');
  await cleanupAll();
  await pg.stop();
}

const engine = process.argv[2] ?? 'postgresql';
const main = ['mariadb', 'mysql'].includes(engine) ? mariaMain : engine === 'postgresql' ? pgMain : undefined;
if (!main) {
  console.error(`unknown engine ${engine}: postgresql or mariadb`);
  process.exit(2);
}
main().then(
  () => process.exit(0),
  async (err) => {
    console.error(err);
    await cleanupAll();
    process.exit(1);
  },
);
