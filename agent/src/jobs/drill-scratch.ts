import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import type { TargetSpec } from '@dbbackup/proto';
import pg from 'pg';
import { AgentError } from '../agent-error.js';
import { firstTool } from '../engines/engine-support.js';
import { mysqlQuery } from '../engines/mysql-engine.js';
import { client } from '../engines/postgres-client.js';
import type { JobContext } from './job-context.js';

/**
 * A drill's scratch destination: made by the agent, owned by it, never the target's own
 * database. What it is, recorded in the agent's store before anything is written to it,
 * so that it is removed after a kill -9 too.
 */
export interface ScratchRecord {
  engine: TargetSpec['engine'];
  /** The database name (PostgreSQL, MariaDB), or the path (SQLite file, files directory). */
  database: string;
  /** The drill's own directory under the state directory. */
  dir: string;
  /** A throwaway Redis server: its port and process id. */
  port?: number;
  pid?: number;
}

const DRILL_DB_PREFIX = 'dbbackup_drill_';

/** Where a drill of `target` restores to; nothing is created yet but the drill's directory. */
export async function planScratch(
  target: TargetSpec,
  jobId: string,
  drillsDir: string,
): Promise<ScratchRecord> {
  const id = jobId
    .replace(/[^0-9a-f]/gi, '')
    .slice(0, 12)
    .toLowerCase();
  const dir = path.join(drillsDir, id);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  switch (target.engine) {
    case 'postgresql':
    case 'mysql':
      return { engine: target.engine, database: `${DRILL_DB_PREFIX}${id}`, dir };
    case 'sqlite':
      return { engine: target.engine, database: path.join(dir, 'drill.sqlite'), dir };
    case 'files':
      return { engine: target.engine, database: path.join(dir, 'tree'), dir };
    case 'redis':
      return { engine: target.engine, database: path.join(dir, 'dump.rdb'), dir, port: await freePort() };
    default:
      throw new AgentError('unsupported', `drills of ${target.engine} targets are not supported yet`);
  }
}

/** Remove a scratch destination, whatever is left of it (also after a crash). */
export async function removeScratch(target: TargetSpec, s: ScratchRecord): Promise<void> {
  if (s.pid) {
    try {
      process.kill(s.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  // A physical drill's data directory: the server running from it is stopped first.
  const postmaster = s.engine === 'postgresql' ? await postmasterOf(s.dir) : undefined;
  if (postmaster) {
    try {
      // SIGQUIT is the postmaster's immediate shutdown, which ends its children too.
      process.kill(postmaster, 'SIGQUIT');
      await gone(postmaster, 10_000);
    } catch {
      // Already gone.
    }
  }
  if (s.engine === 'postgresql' && s.database.startsWith(DRILL_DB_PREFIX)) {
    const cl = await client(target, 'postgres');
    try {
      const name = pg.escapeIdentifier(s.database);
      // WITH (FORCE) ends sessions still open on it (PostgreSQL 13 and newer).
      await cl
        .query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
        .catch(() => cl.query(`DROP DATABASE IF EXISTS ${name}`));
    } finally {
      await cl.end().catch(() => {});
    }
  }
  if (s.engine === 'mysql' && s.database.startsWith(DRILL_DB_PREFIX))
    await mysqlQuery(target, `DROP DATABASE IF EXISTS \`${s.database}\``);
  await rm(s.dir, { recursive: true, force: true });
}

/**
 * A drill's scratch destination removed at its end, said in the job's log as `what`; the
 * scratch record is cleared only once it is gone (otherwise the next start removes it).
 */
export async function removeScratchLogged(
  target: TargetSpec,
  s: ScratchRecord,
  ctx: JobContext,
  what: string,
): Promise<void> {
  try {
    await removeScratch(target, s);
  } catch (err) {
    ctx.log('error', `could not remove ${what}: ${(err as Error).message}; it is removed at the next start`);
    return;
  }
  await ctx.clearScratch?.();
  ctx.log('info', `removed ${what}`);
}

/** The live PostgreSQL server running from `dir`, by its postmaster.pid (checked to be a postgres process). */
export async function postmasterOf(dir: string): Promise<number | undefined> {
  const first = (await readFile(path.join(dir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0];
  const pid = Number(first);
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return /postgres/.test(cmdline) ? pid : undefined;
}

async function gone(pid: number, ms: number) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A port nothing listens on now, on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A throwaway redis-server from the host's own binary, on 127.0.0.1 and the scratch port,
 * loading the restored RDB from the drill's directory; no saving, no AOF.
 */
export async function startScratchRedis(s: ScratchRecord): Promise<ChildProcess> {
  const server = await firstTool(['redis-server'], 'redis');
  const child = spawn(
    server.path,
    [
      '--port',
      String(s.port),
      '--bind',
      '127.0.0.1',
      '--dir',
      s.dir,
      '--dbfilename',
      path.basename(s.database),
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
    ],
    { stdio: 'ignore' },
  );
  child.on('error', () => {});
  return child;
}

/** The target to check a scratch Redis through: its port, no password. */
export function scratchRedisTarget(target: TargetSpec, s: ScratchRecord): TargetSpec {
  return {
    ...target,
    connection: { host: '127.0.0.1', port: s.port },
    secretRef: { kind: 'none' },
  } as TargetSpec;
}
