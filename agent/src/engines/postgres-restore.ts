import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import type { TargetSpec } from '@dbbackup/proto';
import { execa } from 'execa';
import pg from 'pg';
import { AgentError } from '../agent-error.js';
import { childExit } from '../pipeline/child-exit.js';
import type { RestoreOptions } from './engine.js';
import { feedInto, toolError } from './engine-support.js';
import { client, conninfoDbname, libpqEnv, serverInfo } from './postgres-client.js';
import { toolFor } from './postgres-tools.js';
import { feedTool } from './tool-feed.js';

type Input = Readable | ((toolStdin: Writable) => void);

/** pg_restore selects tables from one schema at a time. */
function checkSelection(tables: string[] | undefined) {
  const qualified = (tables ?? []).filter((x) => x.includes('.'));
  const schemasNamed = new Set(qualified.map((x) => x.split('.', 1)[0]));
  if (schemasNamed.size > 1 || (qualified.length > 0 && qualified.length !== (tables ?? []).length)) {
    throw new AgentError(
      'selection-unsupported',
      'pg_restore selects tables from one schema at a time: name tables all unqualified or all in the same schema',
    );
  }
}

/** The destination database per the conflict policy (created, or required); returns the server's major version. */
async function prepareDatabase(t: TargetSpec, o: RestoreOptions, log: (m: string) => void): Promise<number> {
  const admin = await client(t, t.connection.database === o.database ? 'postgres' : t.connection.database);
  try {
    const serverMajor = (await serverInfo(admin)).major;
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
    return serverMajor;
  } finally {
    await admin.end().catch(() => {});
  }
}

/** Run `fn` with a client on the destination database. */
async function withDatabase<T>(
  t: TargetSpec,
  database: string,
  fn: (cl: pg.Client) => Promise<T>,
): Promise<T> {
  const cl = await client(t, database);
  try {
    return await fn(cl);
  } finally {
    await cl.end().catch(() => {});
  }
}

const USER_RELATIONS =
  "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace WHERE c.relkind IN ('r','p','v','m','S') AND ns.nspname NOT IN ('pg_catalog','information_schema') AND ns.nspname NOT LIKE 'pg_toast%'";

/** Conflict policy fail: the destination must hold no relation of its own. */
async function checkEmpty(t: TargetSpec, database: string) {
  const n = await withDatabase(t, database, (cl) => cl.query<{ n: string }>(USER_RELATIONS));
  if (Number(n.rows[0]?.n) > 0)
    throw new AgentError(
      'target-not-empty',
      `database "${database}" is not empty (conflict policy fail); use clean or create`,
    );
}

function restoreArgs(o: RestoreOptions): string[] {
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
  return args;
}

/** pg_restore, fed from the decrypting stream (or by a writer function). */
async function runPgRestore(tool: string, args: string[], env: Record<string, string>, input: Input) {
  if (typeof input === 'function') {
    const child = spawn(tool, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'ignore', 'pipe'] });
    const closed = childExit(child);
    await feedInto(input, child.stdin, closed);
    const e = await closed;
    if (e.code !== 0) throw toolError('pg_restore', { exitCode: e.code, signal: e.signal, stderr: e.stderr });
    return;
  }
  // pg_restore may stop reading early (a selective restore has what it needs); the
  // stream is drained to its end regardless, so every segment is still authenticated.
  const proc = execa(tool, args, {
    stdin: 'pipe',
    env,
    reject: false,
    buffer: { stdout: false, stderr: true },
  });
  await feedTool(input, proc.stdin!);
  const r = await proc;
  if (r.exitCode !== 0) throw toolError('pg_restore', r);
}

/** A PostgreSQL restore: checks, the destination per the conflict policy, then pg_restore in one transaction. */
export async function restorePostgres(
  t: TargetSpec,
  input: Input,
  o: RestoreOptions,
  log: (m: string) => void,
) {
  checkSelection(o.tables);
  const serverMajor = await prepareDatabase(t, o, log);
  if (o.conflict === 'fail') await checkEmpty(t, o.database);
  // pg_restore --table restores the table alone, not its schema: make the schemas of
  // schema-qualified names first, so a selective restore works into a new database.
  const schemas = [
    ...new Set((o.tables ?? []).filter((x) => x.includes('.')).map((x) => x.split('.', 1)[0]!)),
  ];
  if (schemas.length)
    await withDatabase(t, o.database, async (cl) => {
      for (const sc of schemas) await cl.query(`CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(sc)}`);
    });
  const tool = await toolFor(t, 'pg_restore', serverMajor);
  log(`restoring with ${tool.path} into ${o.database} (conflict ${o.conflict})`);
  await runPgRestore(tool.path, restoreArgs(o), libpqEnv(t), input);
}
