import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { waitFor } from './agent.js';
import { freePort } from './net.js';
import { onCleanup, startProcess, trackDir } from './processes.js';

export interface MariaDb {
  port: number;
  socket: string;
  dir: string;
  /** Run SQL as root over the socket; rows of tab-separated fields. */
  sql(sql: string, database?: string): string[][];
  stop(): Promise<void>;
}

/**
 * A throwaway MariaDB from Debian's packages: mariadb-install-db + mariadbd in a
 * temporary directory, TCP on 127.0.0.1 (free port) and a unix socket there;
 * root authenticates over the socket (unix_socket), like a Debian install.
 */
export async function startMariaDb(): Promise<MariaDb> {
  if (!existsSync('/usr/sbin/mariadbd'))
    throw new Error('MariaDB not installed: apt-get install mariadb-server');
  const dir = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-mariadb-')));
  const data = path.join(dir, 'data');
  const socket = path.join(dir, 'mysqld.sock');
  const user = process.getuid?.() === 0 ? ['--user=root'] : [];
  execFileSync(
    'mariadb-install-db',
    [
      '--no-defaults',
      `--datadir=${data}`,
      ...user,
      '--skip-test-db',
      '--auth-root-authentication-method=socket',
    ],
    { stdio: 'pipe' },
  );
  const port = await freePort();
  const proc = startProcess('/usr/sbin/mariadbd', [
    '--no-defaults',
    `--datadir=${data}`,
    `--socket=${socket}`,
    `--port=${port}`,
    '--bind-address=127.0.0.1',
    ...user,
    `--pid-file=${path.join(dir, 'mariadb.pid')}`,
    `--log-error=${path.join(dir, 'error.log')}`,
    '--innodb-buffer-pool-size=64M',
    '--innodb-log-file-size=32M',
    '--innodb-flush-log-at-trx-commit=0',
    '--skip-log-bin',
    '--max-connections=200',
  ]);
  const sql = (q: string, database?: string) =>
    execFileSync(
      'mariadb',
      [
        `--socket=${socket}`,
        '--default-character-set=utf8mb4',
        '--batch',
        '--skip-column-names',
        '-e',
        q,
        ...(database ? [database] : []),
      ],
      {
        stdio: 'pipe',
        maxBuffer: 256 * 1024 * 1024,
      },
    )
      .toString()
      .split('\n')
      .filter((l) => l.length)
      .map((l) => l.split('\t'));
  await waitFor(
    async () => {
      try {
        return sql('SELECT 1')[0]?.[0] === '1';
      } catch {
        return false;
      }
    },
    { timeoutMs: 60_000, what: `mariadbd ready (log: ${path.join(dir, 'error.log')})` },
  );
  const stop = async () => {
    await proc.kill('SIGTERM');
  };
  onCleanup(stop);
  return { port, socket, dir, sql, stop };
}

export interface Redis {
  port: number;
  dir: string;
  conf: string;
  cli(...args: string[]): string;
  /** The argv that starts this instance again (for a target's startCommand). */
  startCommand: string[];
  stop(): Promise<void>;
}

/** A throwaway redis-server from Debian's packages, daemonized with its own config, RDB and pid file. */
export async function startRedis(extraConf: string[] = []): Promise<Redis> {
  if (!existsSync('/usr/bin/redis-server'))
    throw new Error('Redis not installed: apt-get install redis-server');
  const dir = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-redis-')));
  const port = await freePort();
  const conf = path.join(dir, 'redis.conf');
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      'daemonize yes',
      `pidfile ${path.join(dir, 'redis.pid')}`,
      `logfile ${path.join(dir, 'redis.log')}`,
      'repl-diskless-sync-delay 0',
      'save ""',
      'appendonly no',
      ...extraConf,
      '',
    ].join('\n'),
  );
  const startCommand = ['/usr/bin/redis-server', conf];
  execFileSync(startCommand[0]!, startCommand.slice(1), { stdio: 'pipe' });
  const auth = extraConf.find((l) => l.startsWith('requirepass '))?.slice('requirepass '.length);
  const cli = (...args: string[]) =>
    execFileSync('redis-cli', ['-p', String(port), '--no-auth-warning', ...args], {
      stdio: 'pipe',
      env: { ...process.env, ...(auth ? { REDISCLI_AUTH: auth } : {}) },
    })
      .toString()
      .trim();
  await waitFor(
    async () => {
      try {
        return cli('PING') === 'PONG';
      } catch {
        return false;
      }
    },
    { timeoutMs: 30_000, what: 'redis-server ready' },
  );
  const stop = async () => {
    try {
      const pid = Number(readFileSync(path.join(dir, 'redis.pid'), 'utf8'));
      process.kill(pid, 'SIGKILL');
    } catch {}
  };
  onCleanup(stop);
  return { port, dir, conf, cli, startCommand, stop };
}
