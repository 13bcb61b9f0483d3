import { spawn } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Stream } from 'node:stream';
import type { TargetSpec } from '@dbbackup/proto';
import { execa } from 'execa';
import pg from 'pg';
import { AgentError } from '../agent-error.js';
import { agentConfig } from '../config.js';
import { childExit, retained } from '../pipeline/child-exit.js';
import type { DumpHandle, Engine, Mismatch, RestoreOptions, TableStat } from './engine.js';
import { feedInto, secretPassword, toolError } from './engine-support.js';
import { feedTool } from './tool-feed.js';

/** Tables up to this size get an exact count(*); larger ones report the planner's estimate. */
const EXACT_COUNT_MAX_BYTES = 512 * 1024 * 1024;

/**
 * libpq environment for the tools and the client: the password never goes on a
 * command line, and never leaves this host (invariant 6).
 */
function libpqEnv(t: TargetSpec): Record<string, string> {
  const c = t.connection;
  const env: Record<string, string> = {
    PGDATABASE: c.database ?? 'postgres',
    PGCONNECT_TIMEOUT: '10',
    PGAPPNAME: 'dbbackup',
  };
  if (c.host) env.PGHOST = c.host;
  if (c.port) env.PGPORT = String(c.port);
  if (c.user) env.PGUSER = c.user;
  const s = t.secretRef;
  // The host decides: a declared secret only to a destination it is bound to.
  const password = secretPassword(t);
  if (password !== undefined) env.PGPASSWORD = password;
  if (s.kind === 'passfile') env.PGPASSFILE = s.path;
  if (s.kind === 'env') {
    const v = process.env[s.name];
    if (v === undefined)
      throw new AgentError('secret-missing', `environment variable ${s.name} is not set on the agent host`);
    env.PGPASSWORD = v;
  }
  return env;
}

async function client(t: TargetSpec, database = t.connection.database ?? 'postgres'): Promise<pg.Client> {
  const env = libpqEnv(t);
  const c = t.connection;
  const cl = new pg.Client({
    host: c.host ?? '/var/run/postgresql',
    port: c.port ?? 5432,
    database,
    user: c.user ?? process.env.USER ?? 'postgres',
    ...(env.PGPASSWORD ? { password: env.PGPASSWORD } : {}),
    connectionTimeoutMillis: 10_000,
    application_name: 'dbbackup',
  });
  // node-postgres reads PGPASSFILE through its pgpass support when no password is given.
  const savedPassfile = process.env.PGPASSFILE;
  if (env.PGPASSFILE) process.env.PGPASSFILE = env.PGPASSFILE;
  try {
    await cl.connect();
  } catch (err) {
    throw new AgentError('connect-failed', `cannot connect to PostgreSQL: ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    if (env.PGPASSFILE) {
      if (savedPassfile === undefined) delete process.env.PGPASSFILE;
      else process.env.PGPASSFILE = savedPassfile;
    }
  }
  cl.on('error', () => {});
  return cl;
}

type Tool = { path: string; major: number; version: string };

/** What `--version` said for a tool file, with the file identity it was said for. */
const probed = new Map<string, { sig: string; tool: Tool | null }>();

/**
 * One candidate's version. A file already asked is not run again while it and the set
 * of installed majors stay the same (Debian's /usr/bin/pg_dump wrapper answers for
 * the newest one): a package upgrade changes the file and it is asked again.
 */
async function probeTool(file: string, installed: string): Promise<Tool | null> {
  const st = await stat(file).catch(() => undefined);
  if (!st?.isFile()) return null;
  const sig = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${installed}`;
  const hit = probed.get(file);
  if (hit?.sig === sig) return hit.tool;
  const r = await execa(file, ['--version'], { reject: false, timeout: 5000, stdin: 'ignore' });
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(r.stdout ?? '');
  const tool =
    r.exitCode === 0 && m?.[1] ? { path: file, major: Number(m[1]), version: r.stdout.trim() } : null;
  probed.set(file, { sig, tool });
  return tool;
}

/** Every runnable `name` under /usr/lib/postgresql/<major>/bin and on PATH, in that order. */
async function toolVersions(name: 'pg_dump' | 'pg_restore'): Promise<Tool[]> {
  const dirs = new Set<string>();
  const majors = await readdir('/usr/lib/postgresql').catch(() => [] as string[]);
  for (const m of majors) dirs.add(`/usr/lib/postgresql/${m}/bin`);
  for (const d of (process.env.PATH ?? '').split(path.delimiter)) if (d) dirs.add(d);
  const installed = majors.sort().join(',');
  const tools = await Promise.all([...dirs].map((d) => probeTool(path.join(d, name), installed)));
  return tools.filter((t): t is Tool => t !== null);
}

/**
 * A dump tool a target names by path runs only from a directory this host allows
 * (DBBACKUP_TOOL_DIRS, colon-separated; default /usr/bin, /usr/local/bin,
 * /usr/lib/postgresql, /opt), judged by where the path really leads.
 */
export function allowedTool(named: string, dirs = agentConfig().toolDirs): string {
  if (!named.startsWith('/')) return named;
  let real: string;
  try {
    real = realpathSync(named);
  } catch {
    throw new AgentError('tool-missing', `${named} (the target's dumpTool) does not exist`);
  }
  const ok = dirs.some((d) => real.startsWith(`${d.replace(/\/+$/, '')}/`));
  if (!ok)
    throw new AgentError(
      'tool-not-allowed',
      `${named} (the target's dumpTool) is not in a directory this host allows for tools (${dirs.join(':')}; DBBACKUP_TOOL_DIRS)`,
    );
  return real;
}

/**
 * The dump tool a target names itself (options.dumpTool, e.g. YugabyteDB's ysql_dump),
 * else the matching pg_dump/pg_restore.
 */
async function toolFor(t: TargetSpec, name: 'pg_dump' | 'pg_restore', serverMajor: number): Promise<Tool> {
  const named = name === 'pg_dump' ? t.options.dumpTool : undefined;
  if (!named) return pickTool(name, serverMajor);
  const own = allowedTool(named);
  const r = await execa(own, ['--version'], { reject: false, timeout: 5000 });
  if (r.exitCode !== 0)
    throw new AgentError(
      'tool-missing',
      `${own} (the target's dumpTool) does not run: ${String(r.stderr || r.message).slice(0, 500)}`,
    );
  return { path: own, major: serverMajor, version: r.stdout.trim() };
}

/**
 * The pg_dump/pg_restore for a server: the same major version when there is
 * one, else the oldest newer one; a tool older than the server cannot dump it.
 */
export async function pickTool(name: 'pg_dump' | 'pg_restore', serverMajor: number): Promise<Tool> {
  const tools = await toolVersions(name);
  const same = tools.find((t) => t.major === serverMajor);
  if (same) return same;
  const newer = tools.filter((t) => t.major > serverMajor).sort((a, b) => a.major - b.major)[0];
  if (newer) return newer;
  const have = tools.length ? tools.map((t) => `${t.major} (${t.path})`).join(', ') : 'none';
  throw new AgentError(
    'tool-too-old',
    `the server is PostgreSQL ${serverMajor} but no ${name} of version ${serverMajor} or newer is installed (found: ${have}); ` +
      `install postgresql-client-${serverMajor} on this host`,
  );
}

async function serverInfo(cl: pg.Client) {
  const r = await cl.query<{ num: string; version: string }>(
    "SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS version",
  );
  const num = Number(r.rows[0]?.num);
  return { major: Math.floor(num / 10000), version: r.rows[0]?.version ?? String(num) };
}

const STATS_SQL = `
  SELECT format('%I.%I', n.nspname, c.relname) AS tbl,
         CASE WHEN pg_relation_size(c.oid) <= $1 AND has_table_privilege(c.oid, 'SELECT')
              THEN (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text::bigint
              ELSE greatest(c.reltuples, 0)::bigint END AS n,
         pg_relation_size(c.oid) <= $1 AND has_table_privilege(c.oid, 'SELECT') AS exact
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
   ORDER BY 1`;

async function tableStats(cl: pg.Client): Promise<TableStat[]> {
  const r = await cl.query<{ tbl: string; n: string; exact: boolean }>(STATS_SQL, [EXACT_COUNT_MAX_BYTES]);
  return r.rows.map((row) => ({ table: row.tbl, rows: Number(row.n), exact: row.exact }));
}

export const postgresEngine: Engine = {
  id: 'postgresql',
  formatExtension: 'pgdump',

  async testConnection(t) {
    const cl = await client(t);
    try {
      const s = await serverInfo(cl);
      const tool = await toolFor(t, 'pg_dump', s.major);
      return { serverVersion: s.version, toolVersion: tool.version, toolPath: tool.path };
    } finally {
      await cl.end().catch(() => {});
    }
  },

  async dump(t, log, into) {
    // Hold a repeatable-read transaction, export its snapshot, dump from that
    // snapshot and count rows in it: the counts describe exactly what was dumped.
    const cl = await client(t);
    let released = false;
    const release = async () => {
      if (released) return;
      released = true;
      await cl.query('ROLLBACK').catch(() => {});
      await cl.end().catch(() => {});
    };
    try {
      const s = await serverInfo(cl);
      const tool = await toolFor(t, 'pg_dump', s.major);
      log(`using ${tool.path} (${tool.version}) for server ${s.version}`);
      await cl.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const snap = await cl.query<{ id: string }>('SELECT pg_export_snapshot() AS id');
      const snapshot = snap.rows[0]!.id;
      const size = await cl.query<{ s: string }>('SELECT pg_database_size(current_database()) AS s');
      // --lock-wait-timeout: a table held in an exclusive lock fails the dump after 5 min instead of hanging it.
      const args = [
        '--format=custom',
        '--compress=0',
        '--no-password',
        `--snapshot=${snapshot}`,
        '--lock-wait-timeout=300000',
      ];
      // A plain child process: its stdout is an OS pipe that can be handed to the compressor directly.
      const child = spawn(tool.path, args, {
        env: { ...process.env, ...libpqEnv(t) },
        stdio: ['ignore', into ? (into as unknown as Stream) : 'pipe', 'pipe'],
      });
      const done = childExit(child).then(
        async (e) => {
          await release();
          if (e.code !== 0)
            throw toolError('pg_dump', {
              exitCode: e.code ?? undefined,
              signal: e.signal ?? undefined,
              stderr: e.stderr,
            });
        },
        async (err: Error) => {
          await release();
          throw new AgentError('tool-failed', `pg_dump: ${err.message}`);
        },
      );
      done.catch(() => {});
      // Counted in the same snapshot while pg_dump runs (the connection queues the
      // ROLLBACK behind it), so the counts stay off the dump's critical path.
      const tables = tableStats(cl);
      tables.catch(() => {});
      return {
        stdout: retained(child.stdout),
        done,
        serverVersion: s.version,
        toolVersion: tool.version,
        tables,
        sizeHint: Number(size.rows[0]?.s ?? 0),
      } satisfies DumpHandle;
    } catch (err) {
      await release();
      throw err;
    }
  },

  async list(input: Readable) {
    const tool = await pickTool('pg_restore', 0);
    const proc = execa(tool.path, ['--list'], { stdin: 'pipe', reject: false, buffer: true });
    await feedTool(input, proc.stdin!);
    const r = await proc;
    if (r.exitCode !== 0) throw toolError('pg_restore --list', r);
    const entries = r.stdout.split('\n').filter((l) => l && !l.startsWith(';')).length;
    if (entries === 0) throw new AgentError('empty-dump', 'pg_restore --list found no entries');
    return { entries };
  },

  async restore(t, input, o: RestoreOptions, log) {
    const qualified = (o.tables ?? []).filter((x) => x.includes('.'));
    const schemasNamed = new Set(qualified.map((x) => x.split('.', 1)[0]));
    if (schemasNamed.size > 1 || (qualified.length > 0 && qualified.length !== (o.tables ?? []).length)) {
      throw new AgentError(
        'selection-unsupported',
        'pg_restore selects tables from one schema at a time: name tables all unqualified or all in the same schema',
      );
    }
    const admin = await client(t, t.connection.database === o.database ? 'postgres' : t.connection.database);
    let serverMajor: number;
    try {
      serverMajor = (await serverInfo(admin)).major;
      const exists =
        (await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [o.database])).rowCount! > 0;
      if (o.conflict === 'create') {
        if (exists)
          throw new AgentError(
            'target-exists',
            `database "${o.database}" already exists (conflict policy create)`,
          );
        await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(o.database)}`);
        log(`created database ${o.database}`);
      } else if (!exists) {
        throw new AgentError(
          'target-missing',
          `database "${o.database}" does not exist; use conflict policy create`,
        );
      }
    } finally {
      await admin.end().catch(() => {});
    }
    if (o.conflict === 'fail') {
      const cl = await client(t, o.database);
      try {
        const n = await cl.query<{ n: string }>(
          "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace WHERE c.relkind IN ('r','p','v','m','S') AND ns.nspname NOT IN ('pg_catalog','information_schema') AND ns.nspname NOT LIKE 'pg_toast%'",
        );
        if (Number(n.rows[0]?.n) > 0) {
          throw new AgentError(
            'target-not-empty',
            `database "${o.database}" is not empty (conflict policy fail); use clean or create`,
          );
        }
      } finally {
        await cl.end().catch(() => {});
      }
    }
    // pg_restore --table restores the table alone, not its schema: make the schemas of
    // schema-qualified names first, so a selective restore works into a new database.
    const schemas = [
      ...new Set((o.tables ?? []).filter((t) => t.includes('.')).map((t) => t.split('.', 1)[0]!)),
    ];
    if (schemas.length) {
      const cl = await client(t, o.database);
      try {
        for (const sc of schemas) await cl.query(`CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(sc)}`);
      } finally {
        await cl.end().catch(() => {});
      }
    }
    const tool = await toolFor(t, 'pg_restore', serverMajor);
    // libpq reads a --dbname holding '=' or a URI as a connection string: the name goes
    // in as the one quoted value of a connection string built here.
    const args = [
      '--no-password',
      '--exit-on-error',
      '--single-transaction',
      `--dbname=${conninfoDbname(o.database)}`,
    ];
    if (o.conflict === 'clean') args.push('--clean', '--if-exists');
    for (const tbl of o.tables ?? []) {
      const [schema, name] = tbl.includes('.') ? tbl.split('.', 2) : [undefined, tbl];
      if (schema) args.push(`--schema=${schema}`);
      args.push(`--table=${name}`);
    }
    log(`restoring with ${tool.path} into ${o.database} (conflict ${o.conflict})`);
    const env = libpqEnv(t);
    if (typeof input === 'function') {
      const child = spawn(tool.path, args, {
        env: { ...process.env, ...env },
        stdio: ['pipe', 'ignore', 'pipe'],
      });
      const closed = childExit(child);
      await feedInto(input, child.stdin, closed);
      const e = await closed;
      if (e.code !== 0)
        throw toolError('pg_restore', { exitCode: e.code, signal: e.signal, stderr: e.stderr });
      return;
    }
    // pg_restore may stop reading early (a selective restore has what it needs); the
    // stream is drained to its end regardless, so every segment is still authenticated.
    const proc = execa(tool.path, args, {
      stdin: 'pipe',
      env,
      reject: false,
      buffer: { stdout: false, stderr: true },
    });
    await feedTool(input, proc.stdin!);
    const r = await proc;
    if (r.exitCode !== 0) throw toolError('pg_restore', r);
  },

  async postRestoreCheck(t, database, expected, tables) {
    const cl = await client(t, database);
    try {
      const actual = new Map((await tableStats(cl)).map((s) => [s.table, s]));
      const wanted = tables?.length
        ? expected.filter((e) => tables.some((w) => e.table === w || e.table.endsWith(`.${w}`)))
        : expected;
      const mismatches: Mismatch[] = [];
      for (const e of wanted) {
        if (!e.exact) continue;
        const a = actual.get(e.table);
        if (!a || a.rows !== e.rows)
          mismatches.push({ table: e.table, expected: e.rows, actual: a?.rows ?? null });
      }
      return mismatches;
    } finally {
      await cl.end().catch(() => {});
    }
  },
};

/** `dbname='…'` with libpq's quoting: the value can never be read as more parameters. */
export function conninfoDbname(name: string): string {
  return `dbname='${name.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
