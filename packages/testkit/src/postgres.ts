import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './net.js';
import { onCleanup, trackDir } from './processes.js';

/** The directory of the newest PostgreSQL server binaries from Debian's packages. */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root)
    ? readdirSync(root).filter((m) => existsSync(path.join(root, m, 'bin', 'initdb')))
    : [];
  majors.sort((a, b) => Number(b) - Number(a));
  if (!majors[0]) throw new Error('PostgreSQL server not installed: apt-get install postgresql');
  return path.join(root, majors[0], 'bin');
}

export interface PgServer {
  port: number;
  dir: string;
  /** Superuser URL to a database (default `postgres`). */
  url(database?: string): string;
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

function asPostgres(cmd: string, args: string[]) {
  const isRoot = process.getuid?.() === 0;
  return isRoot
    ? execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { stdio: 'pipe' })
    : execFileSync(cmd, args, { stdio: 'pipe' });
}

/**
 * A throwaway PostgreSQL cluster from Debian's packages: initdb + pg_ctl in a
 * temporary directory, listening on 127.0.0.1 on a free port, run as the
 * `postgres` user when we are root (PostgreSQL refuses root).
 */
export async function startPostgres(opts: { settings?: Record<string, string> } = {}): Promise<PgServer> {
  const bin = postgresBinDir();
  const dir = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-pg-')));
  const isRoot = process.getuid?.() === 0;
  if (isRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
  }
  const data = path.join(dir, 'data');
  asPostgres(path.join(bin, 'initdb'), [
    '-D',
    data,
    '-U',
    'postgres',
    '-A',
    'trust',
    '--no-sync',
    '-E',
    'UTF8',
  ]);
  const port = await freePort();
  writeFileSync(path.join(dir, 'port'), String(port));
  const extra = Object.entries(opts.settings ?? {})
    .map(([k, v]) => ` -c ${k}=${v}`)
    .join('');
  asPostgres(path.join(bin, 'pg_ctl'), [
    '-D',
    data,
    '-l',
    path.join(dir, 'server.log'),
    '-w',
    '-o',
    `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200${extra}`,
    'start',
  ]);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      asPostgres(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } catch {}
  };
  onCleanup(stop);
  const url = (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`;
  return {
    port,
    dir,
    url,
    async createDatabase(name: string) {
      const c = new pg.Client({ connectionString: url() });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
      } finally {
        await c.end();
      }
      return url(name);
    },
    stop,
  };
}

/** Run SQL against a database and return the rows. */
export async function query<T = Record<string, unknown>>(
  url: string,
  text: string,
  values: unknown[] = [],
): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text, values)).rows as T[];
  } finally {
    await c.end();
  }
}
