import type { TargetSpec } from '@dbbackup/proto';
import pg from 'pg';
import { AgentError } from '../agent-error.js';
import { targetPassword } from './engine-support.js';

/** Connecting to PostgreSQL: libpq's environment for the tools, and node-postgres for the agent's own queries. */

/**
 * libpq environment for the tools and the client: the password never goes on a
 * command line, and never leaves this host (invariant 6).
 */
export function libpqEnv(t: TargetSpec): Record<string, string> {
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
  const password = targetPassword(t);
  if (password !== undefined) env.PGPASSWORD = password;
  if (s.kind === 'passfile') env.PGPASSFILE = s.path;
  return env;
}

export async function client(
  t: TargetSpec,
  database = t.connection.database ?? 'postgres',
): Promise<pg.Client> {
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

export async function serverInfo(cl: pg.Client) {
  const r = await cl.query<{ num: string; version: string }>(
    "SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS version",
  );
  const num = Number(r.rows[0]?.num);
  return { major: Math.floor(num / 10000), version: r.rows[0]?.version ?? String(num) };
}

/** `dbname='…'` with libpq's quoting: the value can never be read as more parameters. */
export function conninfoDbname(name: string): string {
  return `dbname='${name.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
