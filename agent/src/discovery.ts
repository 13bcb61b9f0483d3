import { open, readdir, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { DiscoveredDb } from '@dbbackup/proto';
import { runTool } from './run-tool.js';

/**
 * The databases this agent can see on its own host without being given a
 * credential: PostgreSQL over its unix sockets where peer (or trust) auth lets
 * this user in, MariaDB/MySQL over their sockets (unix_socket auth), Redis on
 * its local port when it needs no password, and SQLite files under configured
 * paths. Nothing leaves the host but names, sockets and versions.
 */
export interface DiscoveryConfig {
  pgSocketDirs: string[];
  mysqlSockets: string[];
  redis: { host: string; port: number }[];
  sqlitePaths: string[];
}

const PG_SYSTEM = ['template0', 'template1'];
const MYSQL_SYSTEM = ['information_schema', 'performance_schema', 'mysql', 'sys'];

async function postgres(dirs: string[]): Promise<DiscoveredDb[]> {
  const out: DiscoveredDb[] = [];
  for (const dir of dirs) {
    const socks = (await readdir(dir).catch(() => [] as string[])).filter((f) => /^\.s\.PGSQL\.\d+$/.test(f));
    // The driver is loaded only on a host that has a PostgreSQL socket.
    const pg = socks.length ? (await import('pg')).default : undefined;
    for (const s of socks) {
      if (!pg) break;
      const port = Number(s.split('.').pop());
      // Peer auth maps this OS user to the role of the same name; `postgres` is the usual superuser.
      for (const user of [...new Set([os.userInfo().username, 'postgres'])]) {
        const c = new pg.Client({
          host: dir,
          port,
          user,
          database: 'postgres',
          connectionTimeoutMillis: 3000,
        });
        c.on('error', () => {});
        try {
          await c.connect();
          const v = await c.query<{ v: string }>("SELECT current_setting('server_version') AS v");
          const dbs = await c.query<{ datname: string }>(
            'SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1',
          );
          for (const d of dbs.rows)
            if (!PG_SYSTEM.includes(d.datname))
              out.push({
                engine: 'postgresql',
                host: dir,
                port,
                user,
                database: d.datname,
                version: `PostgreSQL ${v.rows[0]?.v}`,
              });
          break;
        } catch {
          // not allowed as this user: try the next one
        } finally {
          await c.end().catch(() => {});
        }
      }
    }
  }
  return out;
}

async function mysql(sockets: string[]): Promise<DiscoveredDb[]> {
  const out: DiscoveredDb[] = [];
  for (const socket of sockets) {
    if (
      !(await stat(socket).then(
        (s) => s.isSocket(),
        () => false,
      ))
    )
      continue;
    for (const client of ['mariadb', 'mysql']) {
      const r = await runTool(
        client,
        [
          `--socket=${socket}`,
          '--connect-timeout=3',
          '--batch',
          '--skip-column-names',
          '-e',
          'SELECT VERSION(); SHOW DATABASES',
        ],
        10_000,
      );
      if (r.exitCode !== 0) continue;
      const [version, ...dbs] = r.stdout.split('\n').filter(Boolean);
      for (const d of dbs)
        if (!MYSQL_SYSTEM.includes(d))
          out.push({ engine: 'mysql', host: socket, database: d, version: `MySQL ${version}` });
      break;
    }
  }
  return out;
}

async function redis(addrs: { host: string; port: number }[]): Promise<DiscoveredDb[]> {
  const out: DiscoveredDb[] = [];
  for (const a of addrs) {
    const r = await runTool('redis-cli', ['-h', a.host, '-p', String(a.port), 'INFO', 'server']);
    const v = /^redis_version:(.*)$/m.exec(r.stdout ?? '')?.[1]?.trim();
    if (r.exitCode === 0 && v)
      out.push({ engine: 'redis', host: a.host, port: a.port, version: `Redis ${v}` });
  }
  return out;
}

const SQLITE_HEADER = Buffer.from('SQLite format 3\0');

async function isSqlite(file: string): Promise<boolean> {
  const fh = await open(file, 'r').catch(() => undefined);
  if (!fh) return false;
  try {
    const b = Buffer.alloc(16);
    const { bytesRead } = await fh.read(b, 0, 16, 0);
    return bytesRead === 16 && b.equals(SQLITE_HEADER);
  } finally {
    await fh.close();
  }
}

async function sqlite(paths: string[], limit = 200): Promise<DiscoveredDb[]> {
  const out: DiscoveredDb[] = [];
  const visit = async (p: string, depth: number): Promise<void> => {
    if (out.length >= limit) return;
    const st = await stat(p).catch(() => undefined);
    if (!st) return;
    if (st.isFile()) {
      if (!/-(wal|shm|journal)$/.test(p) && (await isSqlite(p))) out.push({ engine: 'sqlite', path: p });
      return;
    }
    if (st.isDirectory() && depth < 4)
      for (const f of (await readdir(p).catch(() => [] as string[])).sort())
        await visit(path.join(p, f), depth + 1);
  };
  for (const p of paths) await visit(p, 0);
  return out;
}

export async function discoverDatabases(cfg: DiscoveryConfig): Promise<DiscoveredDb[]> {
  const found = await Promise.all([
    postgres(cfg.pgSocketDirs).catch(() => []),
    mysql(cfg.mysqlSockets).catch(() => []),
    redis(cfg.redis).catch(() => []),
    sqlite(cfg.sqlitePaths).catch(() => []),
  ]);
  return found.flat().slice(0, 500);
}

/** Discovery at most every `intervalMs`, in the background; a heartbeat never waits for it. */
export class DiscoveryCache {
  #last: DiscoveredDb[] | undefined;
  #at = 0;
  #running: Promise<void> | undefined;

  constructor(
    readonly cfg: DiscoveryConfig | undefined,
    readonly intervalMs: number,
  ) {}

  current(): DiscoveredDb[] | undefined {
    if (!this.cfg) return undefined;
    if (!this.#running && Date.now() - this.#at >= this.intervalMs) {
      const cfg = this.cfg;
      this.#running = discoverDatabases(cfg)
        .then((d) => {
          this.#last = d;
          this.#at = Date.now();
        })
        .catch(() => {
          this.#at = Date.now();
        })
        .finally(() => {
          this.#running = undefined;
        });
    }
    return this.#last;
  }

  /** Wait for a discovery in progress (the first heartbeat can then carry results). */
  async settle(): Promise<void> {
    await this.#running;
  }
}
