/**
 * pnpm bench:pipeline — the agent's stream pipeline without a database, against
 * the zstd binary alone on the same bytes, in one process.
 *
 *   BENCH_MB   size of the input (default 300), sysbench-like random hex text
 *
 * (a) zstd -3 -T0 file > out            (b) Meter → zstd → AES-256-GCM segments (+SHA-256) → file
 * (b2) as the agent backs up PostgreSQL: zstd reads the input itself, the agent only encrypts,
 *      hashes and writes zstd's output (its node cpu is the agent's whole per-byte work)
 * (c) zstd -dc out > /dev/null          (d) file → GCM decrypt → zstd -d → /dev/null
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  createWriteStream,
  mkdtempSync,
  openSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { compressor, decompressor } from '../agent/src/pipeline/compression.js';
import { DecryptStream } from '../agent/src/pipeline/decrypt-stream.js';
import { Meter } from '../agent/src/pipeline/meter.js';
import { EncryptStream } from '../agent/src/pipeline/segmented-gcm.js';

const MB = Number(process.env.BENCH_MB ?? 300);
const dir = mkdtempSync(path.join(tmpdir(), 'dbb-pipe-'));
const input = path.join(dir, 'input');

async function time(fn: () => Promise<void> | void) {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await fn();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  return { wall, nodeCpu: (c.user + c.system) / 1e6 };
}

async function main() {
  // BENCH_KIND=hex (default): random hex, compresses about 2:1 like real text columns;
  // BENCH_KIND=repetitive: compresses over 100:1, like pgbench data.
  const out = createWriteStream(input);
  const repetitive = process.env.BENCH_KIND === 'repetitive';
  const block = Buffer.alloc(
    1024 * 1024,
    'pgbench_accounts filler                                             |',
  );
  for (let i = 0; i < MB; i++) out.write(repetitive ? block : randomBytes(512 * 1024).toString('hex'));
  await new Promise<void>((r) => out.end(r));
  const key = randomBytes(32);
  const a = await time(() => {
    spawnSync('zstd', ['-3', '-T0', '-q', '-f', '-o', path.join(dir, 'a.zst'), input]);
  });
  const b = await time(() =>
    pipeline(
      createReadStream(input, { highWaterMark: 1 << 20 }),
      new Meter(),
      compressor('zstd'),
      new EncryptStream(key),
      createWriteStream(path.join(dir, 'b.enc')),
    ),
  );
  // (b2) as the agent backs up PostgreSQL: zstd reads the dump itself (here the file, there
  // pg_dump's pipe) and the agent handles only zstd's output: encrypt + SHA-256 -> file.
  const b2 = await time(async () => {
    const fd = openSync(input, 'r');
    const z = spawn('zstd', ['-3', '-T0', '-q', '-c'], { stdio: [fd, 'pipe', 'inherit'] });
    closeSync(fd);
    const done = new Promise((r) => z.on('close', r));
    await pipeline(z.stdout!, new EncryptStream(key), createWriteStream(path.join(dir, 'b2.enc')));
    await done;
  });
  const c = await time(() => {
    spawnSync('zstd', ['-d', '-q', '-f', '-o', '/dev/null', path.join(dir, 'a.zst')]);
  });
  const sink = () => new Writable({ write: (_c, _e, cb) => cb(), highWaterMark: 1 << 20 });
  const d = await time(() =>
    pipeline(
      createReadStream(path.join(dir, 'b.enc'), { highWaterMark: 1 << 20 }),
      new DecryptStream(key),
      decompressor('zstd'),
      sink(),
    ),
  );
  const row = (l: string, r: { wall: number; nodeCpu: number }) =>
    `  ${l.padEnd(40)} ${r.wall.toFixed(2).padStart(7)} s  ${(MB / r.wall).toFixed(0).padStart(6)} MB/s  node cpu ${r.nodeCpu.toFixed(2)} s`;
  console.log(
    `input ${MB} MB of random hex, ${(statSync(path.join(dir, 'b2.enc')).size / 1048576).toFixed(0)} MB stored`,
  );
  console.log(row('(a) zstd -3 -T0', a));
  console.log(row('(b) meter → zstd → encrypt+sha256 → file', b));
  console.log(row('(b2) zstd → encrypt+sha256 → file', b2));
  console.log(row('(c) zstd -d', c));
  console.log(row('(d) decrypt → zstd -d → sink', d));
  console.log(`  b/a = ${(b.wall / a.wall).toFixed(3)}   d/c = ${(d.wall / c.wall).toFixed(3)}`);
  rmSync(dir, { recursive: true, force: true });
}

void main();
