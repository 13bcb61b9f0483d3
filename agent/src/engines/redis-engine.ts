import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { TargetSpec } from '@dbbackup/proto';
import { execa } from 'execa';
import { AgentError } from '../agent-error.js';
import { agentConfig } from '../config.js';
import { childExit } from '../pipeline/child-exit.js';
import { Crc64 } from './crc64.js';
import type { DumpHandle, Engine, RestoreOptions, TableStat } from './engine.js';
import { firstTool, targetPassword, toolError } from './engine-support.js';

/**
 * Redis: an RDB snapshot streamed from the server by `redis-cli --rdb -` (the
 * replication protocol; the server forks and sends its snapshot). The agent
 * checks the RDB's own CRC-64 as it passes and strips the 40-byte end marker
 * that redis-cli 7.0 leaves after a diskless transfer, so the stored RDB is
 * exactly a valid dump.rdb.
 *
 * A restore replaces the data of the target's Redis instance, and says so:
 * it writes the RDB beside the server's own file (CONFIG GET dir/dbfilename),
 * checks it with redis-check-rdb, turns snapshots off (CONFIG SET save ""),
 * stops the server with SHUTDOWN NOSAVE, moves the file into place, and starts
 * the server with the target's `startCommand`. Everything in the instance
 * before the restore is gone. It refuses when appendonly is on (Redis would
 * load the AOF instead) and, under the default policy `fail`, when the
 * instance holds any key.
 */

function cliArgs(t: TargetSpec): string[] {
  const c = t.connection;
  const args = c.host?.startsWith('/')
    ? ['-s', c.host]
    : ['-h', c.host ?? '127.0.0.1', '-p', String(c.port ?? 6379)];
  if (c.user) args.push('--user', c.user);
  return args;
}

/** The password reaches redis-cli as REDISCLI_AUTH in its environment, never on its command line. */
async function cliEnv(t: TargetSpec): Promise<Record<string, string>> {
  const s = t.secretRef;
  // The host decides: a declared secret only to a destination it is bound to.
  const password = targetPassword(t);
  if (password !== undefined) return { REDISCLI_AUTH: password };
  if (s.kind === 'passfile') {
    const v = (
      await readFile(s.path, 'utf8').catch((err: Error) => {
        throw new AgentError('secret-missing', `cannot read password file ${s.path}: ${err.message}`);
      })
    )
      .split('\n')[0]!
      .trim();
    return { REDISCLI_AUTH: v };
  }
  return {};
}

export async function redisCmd(t: TargetSpec, args: string[], timeoutMs = 15_000): Promise<string> {
  const cli = await firstTool(['redis-cli'], 'redis');
  const r = await execa(cli.path, [...cliArgs(t), '--no-auth-warning', ...args], {
    env: await cliEnv(t),
    reject: false,
    timeout: timeoutMs,
    stdin: 'ignore',
  });
  if (r.timedOut) throw new AgentError('timeout', `redis-cli did not answer within ${timeoutMs / 1000} s`);
  const out = r.stdout.trim();
  // redis-cli prints error replies on stdout and may still exit 0.
  if (
    r.exitCode !== 0 ||
    /^(ERR|NOAUTH|WRONGPASS|NOPERM|LOADING|MISCONF)\b/m.test(out) ||
    /Could not connect/.test(r.stderr)
  ) {
    throw new AgentError(
      'connect-failed',
      `redis: ${`${r.stderr}\n${out}`.trim().split('\n').slice(-3).join(' ')}`,
    );
  }
  return out;
}

function infoField(info: string, name: string): string | undefined {
  return new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

/** Keys per database from INFO keyspace. */
export async function keyspace(t: TargetSpec): Promise<TableStat[]> {
  const info = await redisCmd(t, ['INFO', 'keyspace']);
  const out: TableStat[] = [];
  for (const m of info.matchAll(/^(db\d+):keys=(\d+)/gm))
    out.push({ table: m[1]!, rows: Number(m[2]), exact: false });
  return out;
}

const MAGIC = Buffer.from('REDIS');
const MARKER = 40;

/**
 * Passes an RDB through, holding back its last bytes: at the end it finds the
 * EOF opcode and checksum (with or without redis-cli's 40-byte end marker
 * after them), checks the CRC-64, and releases exactly the RDB.
 */
export class RdbStream extends Transform {
  readonly #crc = new Crc64();
  #held: Buffer = Buffer.alloc(0);
  #head = true;
  bytes = 0;

  constructor() {
    super({ highWaterMark: 1024 * 1024 });
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback) {
    if (this.#head) {
      this.#held = Buffer.concat([this.#held, chunk]);
      if (this.#held.length < 9) return cb();
      if (!this.#held.subarray(0, 5).equals(MAGIC))
        return cb(new AgentError('not-an-rdb', 'the stream is not a Redis RDB file'));
      this.#head = false;
      chunk = this.#held;
      this.#held = Buffer.alloc(0);
    }
    const all = this.#held.length ? Buffer.concat([this.#held, chunk]) : chunk;
    const keep = 9 + MARKER;
    if (all.length <= keep) {
      this.#held = all;
      return cb();
    }
    const out = all.subarray(0, all.length - keep);
    this.#held = Buffer.from(all.subarray(all.length - keep));
    this.#crc.update(out);
    this.bytes += out.length;
    cb(null, out);
  }

  override _flush(cb: TransformCallback) {
    const h = this.#held;
    if (this.#head) return cb(new AgentError('not-an-rdb', 'the stream is too short to be a Redis RDB file'));
    // Try "... FF crc" at the very end, then with a 40-byte marker after it.
    for (const tail of [0, MARKER]) {
      const end = h.length - tail;
      if (end < 9 || h[end - 9] !== 0xff) continue;
      const body = h.subarray(0, end - 8);
      const crc = this.#crc.clone().update(body).bytes();
      const stored = h.subarray(end - 8, end);
      // A zero checksum means the server was configured with rdbchecksum no.
      if (crc.equals(stored) || stored.equals(Buffer.alloc(8))) {
        const rdb = h.subarray(0, end);
        this.bytes += rdb.length;
        return cb(null, rdb);
      }
    }
    cb(
      new AgentError(
        'checksum-mismatch',
        'the RDB does not end with a valid EOF opcode and CRC-64: truncated or damaged',
      ),
    );
  }
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new AgentError(
    'timeout',
    `${what} within ${timeoutMs / 1000} s${last ? `: ${(last as Error).message}` : ''}`,
  );
}

export const redisEngine: Engine = {
  id: 'redis',
  formatExtension: 'rdb',
  restoresInProcess: true,

  async testConnection(t) {
    const cli = await firstTool(['redis-cli'], 'redis');
    const pong = await redisCmd(t, ['PING']);
    if (pong !== 'PONG')
      throw new AgentError('connect-failed', `redis answered PING with ${pong.slice(0, 200)}`);
    const info = await redisCmd(t, ['INFO', 'server']);
    return {
      serverVersion: `Redis ${infoField(info, 'redis_version') ?? '?'}`,
      toolVersion: cli.version,
      toolPath: cli.path,
    };
  },

  async dump(t, log) {
    const cli = await firstTool(['redis-cli'], 'redis');
    const info = await redisCmd(t, ['INFO', 'server']);
    const version = `Redis ${infoField(info, 'redis_version') ?? '?'}`;
    const delay = (await redisCmd(t, ['CONFIG', 'GET', 'repl-diskless-sync-delay']).catch(() => '')).split(
      '\n',
    )[1];
    if (delay && Number(delay) > 0)
      log(`the server waits repl-diskless-sync-delay = ${delay} s before every snapshot`);
    // Counted just before the snapshot: estimates (writes may land in between).
    const tables = keyspace(t);
    await tables;
    log(`streaming an RDB snapshot with ${cli.path} --rdb -`);
    const child = spawn(cli.path, [...cliArgs(t), '--no-auth-warning', '--rdb', '-'], {
      env: { ...process.env, ...(await cliEnv(t)) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const rdb = new RdbStream();
    child.stdout.pipe(rdb);
    child.stdout.on('error', (err) => rdb.destroy(err));
    const passed = new Promise<void>((resolve, reject) => {
      rdb.once('end', resolve);
      rdb.once('error', reject);
    });
    passed.catch(() => {});
    const done = Promise.all([
      childExit(child).then((e) => {
        if (e.code !== 0)
          throw toolError('redis-cli --rdb', { exitCode: e.code, signal: e.signal, stderr: e.stderr });
      }),
      passed,
    ]).then(() => undefined);
    done.catch(() => {});
    // Used memory bounds the RDB's size (values are stored compactly or compressed in it).
    const used = Number(infoField(await redisCmd(t, ['INFO', 'memory']).catch(() => ''), 'used_memory') ?? 0);
    return {
      stdout: rdb,
      done,
      serverVersion: version,
      toolVersion: cli.version,
      tables,
      sizeHint: used,
    } satisfies DumpHandle;
  },

  async list(input: Readable) {
    const rdb = new RdbStream();
    await pipeline(input, rdb, async (s: AsyncIterable<Buffer>) => {
      for await (const _ of s) {
        // drain
      }
    });
    return { entries: 1 };
  },

  async restore(t, input, o, log) {
    if (typeof input === 'function') throw new AgentError('internal', 'the redis engine restores in-process');
    const start = checkRestorable(t, o);
    const keys = await keyspace(t);
    const held = keys.reduce((a, k) => a + k.rows, 0);
    if (o.conflict === 'fail' && held > 0)
      throw new AgentError(
        'target-not-empty',
        `the Redis instance holds ${held} keys (conflict policy fail); use clean to replace them`,
      );
    const finalPath = await rdbPath(t);
    const tmp = path.join(
      path.dirname(finalPath),
      `.${path.basename(finalPath)}.dbbackup-${randomBytes(4).toString('hex')}`,
    );
    try {
      const rdb = new RdbStream();
      await pipeline(input, rdb, createWriteStream(tmp, { mode: 0o600 }));
      const expected = await checkRdb(tmp);
      log(
        `RDB checked: ${rdb.bytes} bytes${expected !== undefined ? `, ${expected} keys` : ''}; stopping Redis (SHUTDOWN NOSAVE) to replace ${finalPath}`,
      );
      await stopRedis(t);
      await rename(tmp, finalPath);
      log(`starting Redis: ${start.join(' ')}`);
      const r = await execa(start[0]!, start.slice(1), { reject: false, timeout: 60_000, stdin: 'ignore' });
      if (r.exitCode !== 0) throw toolError(start[0]!, r, 'start-failed');
      await waitFor(
        'Redis did not come back after the restore',
        async () => ((await redisCmd(t, ['PING'])) === 'PONG' ? true : undefined),
        120_000,
      );
      const loaded = (await keyspace(t)).reduce((a, k) => a + k.rows, 0);
      log(`Redis loaded ${loaded} keys${expected !== undefined ? ` (the RDB holds ${expected})` : ''}`);
      if (expected !== undefined && loaded !== expected)
        throw new AgentError(
          'post-restore-mismatch',
          `Redis loaded ${loaded} keys but the RDB holds ${expected}`,
        );
    } finally {
      await rm(tmp, { force: true });
    }
  },

  async postRestoreCheck(t, _database, expected) {
    const now = await keyspace(t);
    return expected
      .filter((e) => e.exact)
      .flatMap((e) => {
        const n = now.find((k) => k.table === e.table)?.rows ?? 0;
        return n === e.rows ? [] : [{ table: e.table, expected: e.rows, actual: n }];
      });
  },
};

/** What a Redis restore needs before it touches anything; returns the start command (allowed on this host). */
function checkRestorable(t: TargetSpec, o: RestoreOptions): string[] {
  if (o.tables?.length)
    throw new AgentError('unsupported', 'restoring single tables is supported for PostgreSQL only');
  const start = t.options.startCommand;
  if (!start?.length)
    throw new AgentError(
      'restore-not-configured',
      'this Redis target has no options.startCommand: the restore must stop the server and needs a command to start it again',
    );
  // The control plane names the command; this host decides whether it may run.
  if (!agentConfig().allowedCommands.includes(start.join(' ')))
    throw new AgentError(
      'command-not-allowed',
      `startCommand "${start.join(' ')}" is not listed in this agent's DBBACKUP_ALLOWED_COMMANDS (one command per line)`,
    );
  if (o.conflict === 'create')
    throw new AgentError(
      'unsupported',
      'a Redis restore replaces an existing instance’s data; use conflict fail (empty instance) or clean',
    );
  return start;
}

/** Where the server loads its RDB from (CONFIG GET dir/dbfilename); refused when it would load an AOF instead. */
async function rdbPath(t: TargetSpec): Promise<string> {
  const cfg = (name: string) => redisCmd(t, ['CONFIG', 'GET', name]).then((r) => r.split('\n')[1] ?? '');
  const [dir, dbfilename, aof] = await Promise.all([cfg('dir'), cfg('dbfilename'), cfg('appendonly')]);
  if (aof === 'yes')
    throw new AgentError(
      'aof-enabled',
      'appendonly is on: Redis would load its AOF, not the restored RDB; turn it off for the restore',
    );
  if (!dir || !dbfilename)
    throw new AgentError('restore-failed', 'CONFIG GET dir/dbfilename answered nothing (is CONFIG renamed?)');
  return path.join(dir, dbfilename);
}

/** redis-check-rdb on the file (where installed): the number of live keys it holds, if it says. */
export async function checkRdb(file: string): Promise<number | undefined> {
  const checker = await firstTool(['redis-check-rdb'], 'redis', '--version').catch(() => undefined);
  if (!checker) return undefined;
  const r = await execa(checker.path, [file], { reject: false, timeout: 10 * 60_000 });
  if (r.exitCode !== 0) throw toolError('redis-check-rdb', r, 'checksum-mismatch');
  const read = Number(/(\d+) keys read/.exec(r.stdout)?.[1] ?? Number.NaN);
  const expired = Number(/(\d+) already expired/.exec(r.stdout)?.[1] ?? 0);
  return Number.isFinite(read) ? read - expired : undefined;
}

/** No save on the way down (it would overwrite the restored file): wait out a background save, then SHUTDOWN NOSAVE. */
async function stopRedis(t: TargetSpec) {
  await redisCmd(t, ['CONFIG', 'SET', 'save', '']);
  await waitFor(
    'a background save in progress did not finish',
    async () =>
      infoField(await redisCmd(t, ['INFO', 'persistence']), 'rdb_bgsave_in_progress') === '0'
        ? true
        : undefined,
    120_000,
  );
  await redisCmd(t, ['SHUTDOWN', 'NOSAVE']).catch(() => {});
  await waitFor(
    'Redis did not stop',
    async () =>
      redisCmd(t, ['PING']).then(
        () => undefined,
        () => true,
      ),
    60_000,
  );
}
