import { stat } from 'node:fs/promises';
import path from 'node:path';
import { type Command, parseLsn } from '@dbbackup/proto';
import { execa } from 'execa';
import { AgentError } from '../agent-error.js';
import { agentConfig } from '../config.js';
import { exactTool } from '../engines/postgres-tools.js';
import { spaceNeeded } from './drill-job.js';
import { freePort, removeScratchLogged, type ScratchRecord } from './drill-scratch.js';
import type { JobContext } from './job-context.js';
import { clusterOwner } from './pitr-files.js';
import { baseVersion, checkServer, prepareDataDirectory } from './pitr-restore-job.js';
import { startAndRecover } from './pitr-server.js';

type PitrDrillCommand = Extract<Command, { kind: 'pitr.drill' }>;

const RECOVERY_TIMEOUT_MS = 6 * 3_600_000;

/**
 * A restore drill of a physical target's chain: its base backup and every WAL file after
 * it replayed, to the end of the archive, in a scratch data directory the agent makes (in
 * the first directory of DBBACKUP_RESTORE_DIRS that exists, where the cluster's owner can
 * reach it) on a free 127.0.0.1 port. It passes when recovery replayed at least to the
 * start of the newest WAL file (a damaged or missing file ends replay early, and fails
 * it), promoted, and the server answered with its databases. The server is stopped and
 * the directory removed whatever happened (after a kill -9 too: the scratch record).
 */
export async function runPitrDrill(cmd: PitrDrillCommand, ctx: JobContext) {
  if (!ctx.freeBytes || !ctx.recordScratch || !ctx.clearScratch)
    throw new AgentError('internal', 'this job context cannot run drills');
  const versionNum = baseVersion(cmd);
  const pgCtl = await exactTool('pg_ctl', Math.floor(versionNum / 10000));
  const owner = await clusterOwner(cmd.base.meta.engineMeta?.dataDirectory);
  const root = await drillRoot();
  const segmentBytes = Number(cmd.base.meta.engineMeta?.walSegmentBytes ?? 16 * 1024 * 1024);
  const need = spaceNeeded(cmd.base.meta.dumpBytes + cmd.wal.length * segmentBytes);
  const free = await ctx.freeBytes(root);
  if (free < need)
    throw new AgentError(
      'insufficient-space',
      `drill skipped: it needs about ${need} bytes (the base backup and ${cmd.wal.length} WAL files) and ${free} are free in ${root}; nothing was written`,
    );
  const id = cmd.jobId.replace(/[^0-9a-f]/gi, '').slice(0, 12);
  const dir = path.join(root, `dbbackup-drill-${id}`);
  const scratch: ScratchRecord = { engine: 'postgresql', database: '', dir, port: await freePort() };
  await ctx.recordScratch({ target: cmd.target, scratch });
  ctx.log('info', `drill of the chain from base backup ${cmd.base.backupId} in ${dir}, port ${scratch.port}`);
  try {
    const started = Date.now();
    const port = scratch.port!;
    await prepareDataDirectory(cmd, { dir, target: { kind: 'latest' }, port, owner }, ctx);
    const outcome = await startAndRecover({
      pgCtl: pgCtl.path,
      dataDirectory: dir,
      logFile: path.join(dir, 'dbbackup-restore.log'),
      owner,
      timeoutMs: RECOVERY_TIMEOUT_MS,
      log: (m) => ctx.log('info', m),
    });
    if (!outcome.promoted)
      throw new AgentError(
        'recovery-failed',
        `the chain did not replay: ${outcome.fatal ?? ('startError' in outcome ? outcome.startError : '') ?? 'the server stopped'}`,
      );
    checkReplayedTo(outcome.redoDoneAt, cmd.expectEndLsn);
    const databases = await checkServer(cmd.target, port, ctx);
    if (!databases)
      throw new AgentError('drill-failed', 'the chain replayed, but the drilled server did not answer');
    const rtoSeconds = (Date.now() - started) / 1000;
    // Fault injection for the tests: killed with the drilled server running and its directory in place.
    if (ctx.crashPoint === 'during-drill') process.kill(process.pid, 'SIGKILL');
    const replayedUntil = pgTime(outcome.lastTransactionAt) ?? Date.parse(cmd.base.meta.endTime);
    const dataAgeSeconds = Math.max(0, (Date.now() - replayedUntil) / 1000);
    ctx.log(
      'info',
      `drill passed: ${cmd.wal.length} WAL files replayed to ${outcome.redoDoneAt} in ${rtoSeconds.toFixed(2)} s; ${databases.length} databases answer; the newest replayed transaction was ${Math.round(dataAgeSeconds)} s old`,
    );
    return {
      backupId: cmd.base.backupId,
      scratch: `the scratch data directory ${dir} on port ${port}`,
      rtoSeconds,
      dataAgeSeconds,
      bytes: cmd.base.meta.sizeBytes + cmd.wal.reduce((n, f) => n + f.sizeBytes, 0),
      dumpBytes: cmd.base.meta.dumpBytes,
      walFiles: cmd.wal.length,
      replayedTo: outcome.redoDoneAt,
      lastTransactionAt: outcome.lastTransactionAt,
      databases,
      tablesChecked: 0,
      tablesTotal: 0,
      tables: [],
      rtoExceeded: cmd.maxRestoreSeconds !== undefined && rtoSeconds > cmd.maxRestoreSeconds,
    };
  } finally {
    await stopServer(pgCtl.path, dir, owner);
    await removeScratchLogged(cmd.target, scratch, ctx, `the drilled server's directory ${dir}`);
  }
}

/** Replay must reach the newest WAL file given: an early end means a file was damaged or missing. */
export function checkReplayedTo(redoDoneAt: string | null, expectEndLsn: string) {
  if (!redoDoneAt)
    throw new AgentError('drill-failed', 'the server promoted, but its log does not say where redo ended');
  if (parseLsn(redoDoneAt) < parseLsn(expectEndLsn))
    throw new AgentError(
      'chain-broken',
      `replay ended at ${redoDoneAt}, before ${expectEndLsn} where the archived WAL reaches: a WAL file in between does not replay`,
    );
}

/** A time as PostgreSQL's log prints it (`2026-12-02 08:13:17.339+00`), in ms; null if it is not one. */
export function pgTime(s: string | null): number | null {
  const m = s && /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)([+-]\d\d)(?::?(\d\d))?$/.exec(s.trim());
  if (!m) return null;
  const t = Date.parse(`${m[1]}T${m[2]}${m[3]}:${m[4] ?? '00'}`);
  return Number.isNaN(t) ? null : t;
}

/** Where drills of physical targets make their data directory: the first restore directory there is. */
async function drillRoot(): Promise<string> {
  for (const d of agentConfig().restoreDirs) {
    const st = await stat(d).catch(() => undefined);
    if (st?.isDirectory()) return d;
  }
  throw new AgentError(
    'bad-destination',
    `none of the directories this host allows restores into exists (${agentConfig().restoreDirs.join(':')}; DBBACKUP_RESTORE_DIRS)`,
  );
}

async function stopServer(pgCtl: string, dir: string, owner: { uid: number; gid: number } | undefined) {
  await execa(pgCtl, ['-D', dir, '-m', 'immediate', '-w', '-t', '30', 'stop'], {
    reject: false,
    timeout: 60_000,
    stdin: 'ignore',
    cwd: '/',
    ...(owner ? { uid: owner.uid, gid: owner.gid } : {}),
  });
}
