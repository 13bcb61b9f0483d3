import { existsSync } from 'node:fs';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { RecoveryTarget } from '@dbbackup/proto';
import { execa } from 'execa';
import { AgentError } from '../agent-error.js';

/** Starting a restored data directory in recovery, and knowing where recovery stopped. */

export const RECOVERY_MARK = '# dbbackup point-in-time restore';

/** The settings appended to postgresql.auto.conf: they win over everything before them. */
export function recoverySettings(o: {
  walDir: string;
  target: RecoveryTarget;
  port: number;
  dataDirectory: string;
}): string {
  const lines = [
    RECOVERY_MARK,
    // The paths are checked to hold only [A-Za-z0-9_./-]: nothing here can reach the shell as syntax.
    `restore_command = 'cp "${o.walDir}/%f" "%p"'`,
    "recovery_target_action = 'promote'",
    `port = ${o.port}`,
    "listen_addresses = 'localhost'",
    `unix_socket_directories = '${o.dataDirectory}'`,
    // The copy must not archive into, or stream from, the cluster it was taken from.
    'archive_mode = off',
    // No connections during recovery: then it does not need the source's max_connections and
    // the other limits hot standby insists on (the source may run with larger ones).
    'hot_standby = off',
    "primary_conninfo = ''",
  ];
  if (o.target.kind === 'time') lines.push(`recovery_target_time = '${pgTimestamp(o.target.time)}'`);
  if (o.target.kind === 'lsn') lines.push(`recovery_target_lsn = '${o.target.lsn}'`);
  return `${lines.join('\n')}\n`;
}

/** An ISO time as recovery_target_time takes it (it refuses the `T…Z` form): `2026-12-02 08:13:17.339+00`. */
export function pgTimestamp(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) throw new AgentError('bad-command', `${iso} is not a time`);
  return `${d.toISOString().replace('T', ' ').replace('Z', '')}+00`;
}

/** A data directory from a Debian-style cluster has no configuration files of its own: give it minimal ones. */
export async function ensureConfigFiles(dir: string) {
  if (!existsSync(path.join(dir, 'postgresql.conf')))
    await writeFile(
      path.join(dir, 'postgresql.conf'),
      "# written by dbbackup for a restored cluster\ninclude_if_exists = 'postgresql.auto.conf'\n",
      { mode: 0o600 },
    );
  if (!existsSync(path.join(dir, 'pg_hba.conf')))
    await writeFile(
      path.join(dir, 'pg_hba.conf'),
      'local all all peer\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n',
      { mode: 0o600 },
    );
}

/** What the server log says about where recovery ended. */
export function recoveryOutcome(log: string) {
  const stopped = /recovery stopping (before|after) (?:commit|abort) of transaction \d+, time ([^\n]+)/.exec(
    log,
  );
  const lastTx = [...log.matchAll(/last completed transaction was at log time ([^\n]+)/g)].pop();
  const timeline = [...log.matchAll(/selected new timeline ID: (\d+)/g)].pop();
  const redo = [...log.matchAll(/redo done at ([0-9A-F]+\/[0-9A-F]+)/g)].pop();
  return {
    stoppedAt: stopped ? `${stopped[1]} commit at ${stopped[2]!.trim()}` : null,
    lastTransactionAt: lastTx?.[1]?.trim() ?? null,
    newTimeline: timeline ? Number(timeline[1]) : null,
    redoDoneAt: redo?.[1] ?? null,
    promoted: /database system is ready to accept connections/.test(log) && !!timeline,
    targetNotReached: /recovery ended before configured recovery target was reached/.test(log),
    fatal: /(FATAL|PANIC):\s+([^\n]+)/.exec(log)?.[0] ?? null,
  };
}

/**
 * Start the restored cluster with pg_ctl (as its owner) and wait until recovery has
 * promoted it, or the server has stopped. Resolves with the log's account of it.
 */
export async function startAndRecover(o: {
  pgCtl: string;
  dataDirectory: string;
  logFile: string;
  owner: { uid: number; gid: number } | undefined;
  timeoutMs: number;
  log: (m: string) => void;
}) {
  const from = existsSync(o.logFile) ? (await readFile(o.logFile, 'utf8')).length : 0;
  const r = await execa(o.pgCtl, ['-D', o.dataDirectory, '-l', o.logFile, '-w', '-t', '60', 'start'], {
    reject: false,
    timeout: 120_000,
    stdin: 'ignore',
    ...(o.owner ? { uid: o.owner.uid, gid: o.owner.gid } : {}),
    cwd: o.dataDirectory,
  });
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    const text = (await readFile(o.logFile, 'utf8').catch(() => '')).slice(from);
    const outcome = recoveryOutcome(text);
    const running = existsSync(path.join(o.dataDirectory, 'postmaster.pid'));
    if (outcome.promoted && !existsSync(path.join(o.dataDirectory, 'recovery.signal')))
      return { ...outcome, running };
    if (!running && (r.exitCode !== 0 || outcome.fatal))
      return { ...outcome, running, startError: r.stderr.trim() };
    if (Date.now() > deadline)
      throw new AgentError(
        'recovery-timeout',
        `recovery did not finish in ${Math.round(o.timeoutMs / 1000)} s; see ${o.logFile}`,
      );
    await new Promise((res) => setTimeout(res, 300));
  }
}

/** Drop the recovery target lines (the archive ends before the target: replay all of it). */
export async function dropRecoveryTarget(autoConf: string) {
  const text = await readFile(autoConf, 'utf8');
  await writeFile(
    autoConf,
    text
      .split('\n')
      .filter((l) => !/^recovery_target_(time|lsn)\s*=/.test(l))
      .join('\n'),
  );
}

export async function appendSettings(autoConf: string, settings: string) {
  await appendFile(autoConf, `\n${settings}`);
}
