/**
 * pnpm bench:floor — what any backup that hashes its output costs on this machine.
 *
 * bench:backup's (a) is `pg_dump | zstd > file`; the agent adds SHA-256 and AES-GCM
 * on zstd's output. This runs, interleaved BENCH_REPEAT times (default 7) on a
 * BENCH_RANDOM_MB (default 600) database of sysbench-style random rows:
 *   base   pg_dump -Fc -Z0 db | zstd -3 -T0 > file                 (bench:backup's (a))
 *   cat    ... | zstd | cat > file                                   (one more pipe stage)
 *   sha    ... | zstd | tee file | sha256sum                         (coreutils' C SHA-256 only)
 *   agent  ... | zstd | node encrypt-stdin file                      (the agent's EncryptStream:
 *                                                                    AES-256-GCM segments + SHA-256)
 * and prints each one's median wall time and the median of its per-run ratios to base.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cleanupAll, postgresBinDir, startPostgres, trackDir } from '@dbbackup/testkit';

const REPEAT = Math.max(1, Number(process.env.BENCH_REPEAT ?? 7));
const RANDOM_MB = Number(process.env.BENCH_RANDOM_MB ?? 600);
const here = path.dirname(new URL(import.meta.url).pathname);
const dir = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-floor-')));

// The consumer runs as the agent runs: bundled JavaScript (no TypeScript loader), the agent's Node flags.
const { buildSync } = createRequire(path.join(here, '../agent/package.json'))('esbuild');
const consumer = path.join(dir, 'encrypt-stdin.mjs');
buildSync({
  entryPoints: [path.join(here, 'encrypt-stdin.ts')],
  bundle: true,
  platform: 'node',
  format: 'esm',
  outfile: consumer,
  logLevel: 'warning',
});
const nodeFlags = readFileSync(path.join(here, '../agent/node-flags'), 'utf8').trim();

const bin = postgresBinDir();
const pg = await startPostgres();
const env = { ...process.env, PGHOST: '127.0.0.1', PGPORT: String(pg.port), PGUSER: 'postgres' };
const psql = (db: string, sql: string) =>
  execFileSync(`${bin}/psql`, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', db, '-c', sql], { env });
console.log(`preparing: ${RANDOM_MB} MB of random rows ...`);
psql('postgres', 'CREATE DATABASE floor');
psql(
  'floor',
  `CREATE TABLE sbtest1 (id serial PRIMARY KEY, k int NOT NULL, c char(120) NOT NULL, pad char(60) NOT NULL);
   INSERT INTO sbtest1 (k, c, pad) SELECT (random()*1e6)::int,
     substr(md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text), 1, 120),
     substr(md5(random()::text) || md5(random()::text), 1, 60) FROM generate_series(1, ${Math.round((RANDOM_MB * 1024 * 1024) / 250)});`,
);
psql('floor', 'VACUUM ANALYZE sbtest1');

const dump = `${bin}/pg_dump -Fc -Z0 floor | zstd -3 -T0 -q`;
const out = path.join(dir, 'out');
const variants: [string, string][] = [
  ['base', `${dump} > ${out}`],
  ['cat', `${dump} | cat > ${out}`],
  ['sha', `${dump} | tee ${out} | sha256sum > /dev/null`],
  ['agent', `${dump} | ${process.execPath} ${nodeFlags} ${consumer} ${out}`],
];
const runs = new Map<string, number[]>();
for (let i = 0; i < REPEAT; i++)
  for (const [name, cmd] of variants) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync('bash', ['-c', `set -o pipefail; ${cmd}`], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    if (r.status !== 0) throw new Error(`${name}: ${r.stderr}`);
    runs.set(name, [...(runs.get(name) ?? []), Number(process.hrtime.bigint() - t0) / 1e9]);
  }
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const base = runs.get('base')!;
console.log(
  `\n${RANDOM_MB} MB random rows, ${REPEAT} interleaved runs      median s   median ratio to base   per-run ratios`,
);
for (const [name] of variants) {
  const v = runs.get(name)!;
  const ratios = v.map((x, i) => x / base[i]!);
  console.log(
    `  ${name.padEnd(6)} ${median(v).toFixed(2).padStart(30)}   ${median(ratios).toFixed(3).padStart(20)}   ${ratios.map((r) => r.toFixed(2)).join(' ')}`,
  );
}
await cleanupAll();
await pg.stop();
