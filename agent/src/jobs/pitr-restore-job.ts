import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command, RecoveryTarget, TargetSpec } from '@dbbackup/proto';
import { AgentError } from '../agent-error.js';
import { client } from '../engines/postgres-client.js';
import { exactTool } from '../engines/postgres-tools.js';
import { openStore } from '../storage/open-store.js';
import { every, type JobContext } from './job-context.js';
import { combineChain } from './pitr-combine.js';
import { checkEmptyDirectory, clusterOwner, fetchWalFile, ownDirectory, unpackBase } from './pitr-files.js';
import {
  appendSettings,
  dropRecoveryTarget,
  ensureConfigFiles,
  recoverySettings,
  startAndRecover,
} from './pitr-server.js';
import { eachAtMost } from './pool.js';

type PitrRestoreCommand = Extract<Command, { kind: 'pitr.restore' }>;
/** What a restore and a drill of a chain both carry: the target, its base backup and WAL. */
type Chain = Pick<PitrRestoreCommand, 'base' | 'ancestors' | 'wal' | 'walStorage' | 'target'>;

/** Where the fetched WAL waits for recovery inside the new data directory (removed once promoted). */
const WAL_DIR = 'dbbackup_restore_wal';
const RECOVERY_TIMEOUT_MS = 6 * 3_600_000;
/** WAL files fetched at once. */
const FETCH_CONCURRENCY = 4;

/**
 * A point-in-time restore on this host: the base backup unpacked into a new, empty data
 * directory; the WAL after it fetched, authenticated and decrypted beside it; recovery
 * settings written (restore_command copying from there, the target, promote); the
 * cluster started on the given port as its owner; and the result read from its log.
 * Nothing is written if the directory is not new and empty, or the tools are missing.
 */
export async function runPitrRestore(cmd: PitrRestoreCommand, ctx: JobContext) {
  const dir = cmd.dataDirectory;
  const versionNum = baseVersion(cmd);
  await checkEmptyDirectory(dir);
  const pgCtl = await exactTool('pg_ctl', Math.floor(versionNum / 10000));
  const owner = await clusterOwner(cmd.base.meta.engineMeta?.dataDirectory);
  ctx.log('info', `restoring base backup ${cmd.base.backupId} into ${dir} (${describe(cmd)})`);
  const { walDir, autoConf, fetched } = await prepareDataDirectory(
    cmd,
    { dir, target: cmd.recoveryTarget, port: cmd.port, owner },
    ctx,
  );
  const outcome = await recover(cmd, pgCtl.path, autoConf, owner, ctx);
  await rm(walDir, { recursive: true, force: true });
  const check = await checkServer(cmd.target, cmd.port, ctx);
  ctx.log(
    'info',
    `PostgreSQL is running on port ${cmd.port} from ${dir}, promoted on timeline ${outcome.newTimeline ?? '?'}`,
  );
  return {
    dataDirectory: dir,
    port: cmd.port,
    baseBackupId: cmd.base.backupId,
    walFiles: fetched,
    recoveryTarget: cmd.recoveryTarget,
    stoppedAt: outcome.stoppedAt,
    lastTransactionAt: outcome.lastTransactionAt,
    timeline: outcome.newTimeline,
    redoDoneAt: outcome.redoDoneAt,
    databases: check,
  };
}

/** The base backup's server version, or a failure when it is not a physical base backup. */
export function baseVersion(cmd: Chain): number {
  const engineMeta = cmd.base.meta.engineMeta ?? {};
  const versionNum = Number(engineMeta.serverVersionNum ?? 0);
  if (engineMeta.kind !== 'physical' || !versionNum)
    throw new AgentError('not-physical', `backup ${cmd.base.backupId} is not a physical base backup`);
  return versionNum;
}

/**
 * A data directory ready to start in recovery: the base backup unpacked into `dir`, the WAL
 * after it fetched, authenticated and decrypted beside it, recovery.signal and the recovery
 * settings written, everything owned by the cluster's owner.
 */
export async function prepareDataDirectory(
  cmd: Chain,
  o: {
    dir: string;
    target: RecoveryTarget;
    port: number;
    owner: { uid: number; gid: number } | undefined;
  },
  ctx: JobContext,
) {
  const { dir } = o;
  if (cmd.ancestors?.length) await combineChain([...cmd.ancestors, cmd.base], dir, ctx);
  else await unpackBase(cmd.base, dir, ctx);
  const walDir = path.join(dir, WAL_DIR);
  await mkdir(walDir, { recursive: true, mode: 0o700 });
  const fetched = await fetchAll(cmd, walDir, ctx);
  await writeFile(path.join(dir, 'recovery.signal'), '', { mode: 0o600 });
  await ensureConfigFiles(dir);
  const autoConf = path.join(dir, 'postgresql.auto.conf');
  await appendSettings(
    autoConf,
    recoverySettings({ walDir, target: o.target, port: o.port, dataDirectory: dir }),
  );
  await ownDirectory(dir, o.owner);
  return { walDir, autoConf, fetched };
}

async function fetchAll(cmd: Chain, walDir: string, ctx: JobContext) {
  const walStore = await openStore(cmd.walStorage);
  let fetched = 0;
  const stop = every(1000, () => ctx.progress('fetch-wal', fetched, cmd.wal.length));
  try {
    // A few at a time: each file is a zstd child and a decryption, and the host has cores to spare
    // while recovery has not started. The first failure stops the others from taking more, and
    // is thrown once none is still writing into the directory the caller may then remove.
    await eachAtMost(cmd.wal, FETCH_CONCURRENCY, async (f) => {
      await fetchWalFile(walStore, f, walDir, ctx);
      fetched++;
    });
  } finally {
    stop();
  }
  ctx.log(
    'info',
    `fetched ${fetched} WAL files${cmd.wal.length ? ` (${cmd.wal[0]!.name} to ${cmd.wal[cmd.wal.length - 1]!.name})` : ''}`,
  );
  return fetched;
}

function describe(cmd: PitrRestoreCommand): string {
  const t = cmd.recoveryTarget;
  return t.kind === 'time'
    ? `to ${t.time}`
    : t.kind === 'lsn'
      ? `to LSN ${t.lsn}`
      : 'to the end of the archive';
}

/**
 * Start recovery. When the archive ends before a time or LSN target (no later commit exists
 * anywhere) PostgreSQL stops with "recovery ended before configured recovery target was
 * reached": everything archived is then the state at the target, so recovery runs again
 * to the end of the WAL it was given.
 */
async function recover(
  cmd: PitrRestoreCommand,
  pgCtl: string,
  autoConf: string,
  owner: { uid: number; gid: number } | undefined,
  ctx: JobContext,
) {
  const run = () =>
    startAndRecover({
      pgCtl,
      dataDirectory: cmd.dataDirectory,
      logFile: path.join(cmd.dataDirectory, 'dbbackup-restore.log'),
      owner,
      timeoutMs: RECOVERY_TIMEOUT_MS,
      log: (m) => ctx.log('info', m),
    });
  let outcome = await run();
  if (
    !outcome.promoted &&
    outcome.targetNotReached &&
    cmd.walToArchiveEnd &&
    cmd.recoveryTarget.kind !== 'latest'
  ) {
    ctx.log(
      'info',
      'no commit after the target is archived yet: recovering to the end of the archive, which is the state at the target',
    );
    await dropRecoveryTarget(autoConf);
    outcome = await run();
  }
  if (!outcome.promoted)
    throw new AgentError(
      'recovery-failed',
      `recovery did not complete: ${outcome.fatal ?? ('startError' in outcome ? outcome.startError : '') ?? 'the server stopped'}; the server log is ${path.join(cmd.dataDirectory, 'dbbackup-restore.log')}`,
    );
  if (outcome.stoppedAt) ctx.log('info', `recovery stopped ${outcome.stoppedAt}`);
  if (outcome.lastTransactionAt)
    ctx.log('info', `last completed transaction at ${outcome.lastTransactionAt}`);
  return outcome;
}

/** The post-restore check: the restored server answers, out of recovery, with its databases. */
export async function checkServer(
  target: TargetSpec,
  port: number,
  ctx: JobContext,
): Promise<string[] | null> {
  const t = { ...target, connection: { ...target.connection, host: '127.0.0.1', port } };
  const cl = await client(t, 'postgres').catch((err: Error) => {
    ctx.log('warn', `the restored server runs, but the check could not connect: ${err.message}`);
    return undefined;
  });
  if (!cl) return null;
  try {
    const rec = await cl.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
    if (rec.rows[0]?.r) throw new AgentError('recovery-failed', 'the restored server is still in recovery');
    const dbs = await cl.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1',
    );
    return dbs.rows.map((r) => r.datname);
  } finally {
    await cl.end().catch(() => {});
  }
}
