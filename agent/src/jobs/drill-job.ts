import type { ChildProcess } from 'node:child_process';
import type { Command, TargetSpec } from '@dbbackup/proto';
import { AgentError } from '../agent-error.js';
import type { Mismatch, TableStat } from '../engines/engine.js';
import { checkRdb, keyspace, redisCmd } from '../engines/redis-engine.js';
import {
  planScratch,
  removeScratchLogged,
  type ScratchRecord,
  scratchRedisTarget,
  startScratchRedis,
} from './drill-scratch.js';
import type { JobContext } from './job-context.js';
import { restoreAndCheck, restoreToFile } from './restore-job.js';

type DrillCommand = Extract<Command, { kind: 'drill' }>;

/** The per-table results a drill reports (the rest stays countable from tablesTotal). */
const MAX_TABLE_RESULTS = 500;

/** Room a drill needs where it writes: the dump's size and a tenth more, plus 16 MiB. */
export const spaceNeeded = (dumpBytes: number) => Math.ceil(dumpBytes * 1.1) + 16 * 1024 * 1024;

/**
 * A restore drill: the backup restored into a scratch destination the agent makes (a new
 * database on the target's server, a throwaway redis-server, a file or a directory under
 * the state directory), checked against its metadata, measured, and removed whatever
 * happened. RTO is measured from the first byte fetched to the check passing; the data
 * age is how old the backup was when the drill ran (the RPO a restore now would give).
 */
export async function runDrill(cmd: DrillCommand, ctx: JobContext) {
  const { meta, target } = cmd;
  if (!ctx.drillsDir || !ctx.freeBytes || !ctx.recordScratch || !ctx.clearScratch)
    throw new AgentError('internal', 'this job context cannot run drills');
  const dataAgeSeconds = Math.max(0, (Date.now() - Date.parse(meta.endTime)) / 1000);
  const { mkdir } = await import('node:fs/promises');
  await mkdir(ctx.drillsDir, { recursive: true, mode: 0o700 });
  const need = spaceNeeded(meta.dumpBytes);
  const free = await ctx.freeBytes(ctx.drillsDir);
  if (free < need)
    throw new AgentError(
      'insufficient-space',
      `drill skipped: it needs about ${need} bytes (the dump is ${meta.dumpBytes}) and ${free} are free where it would write; nothing was written`,
    );
  const scratch = await planScratch(target, cmd.jobId, ctx.drillsDir);
  const record = () => ctx.recordScratch?.({ target, scratch }) ?? Promise.resolve();
  await record();
  ctx.log('info', `drill of backup ${cmd.backupId} into ${describe(scratch)}`);
  let server: ChildProcess | undefined;
  try {
    const started = Date.now();
    const checked =
      target.engine === 'redis'
        ? await drillRedis(cmd, scratch, ctx, record, (c) => {
            server = c;
          })
        : await restoreAndCheck(
            cmd,
            target,
            { database: scratch.database, conflict: 'create', engineMeta: meta.engineMeta },
            ctx,
          );
    const rtoSeconds = (Date.now() - started) / 1000;
    // Fault injection for the tests: killed with the scratch copy restored and not yet removed.
    if (ctx.crashPoint === 'during-drill') process.kill(process.pid, 'SIGKILL');
    const tables = tableResults(checked.tables, checked.mismatches);
    if (checked.mismatches.length) {
      const list = checked.mismatches.map(
        (m) => `${m.table}: expected ${m.expected}, found ${m.actual ?? 'none'}`,
      );
      throw new AgentError(
        'post-restore-mismatch',
        `the drill restored, but the check failed: ${list.join('; ')}`,
      );
    }
    ctx.log(
      'info',
      `drill passed: restored and checked in ${rtoSeconds.toFixed(2)} s; the backup was ${Math.round(dataAgeSeconds)} s old`,
    );
    return {
      backupId: cmd.backupId,
      scratch: describe(scratch),
      rtoSeconds,
      dataAgeSeconds,
      bytes: meta.sizeBytes,
      dumpBytes: checked.bytes,
      tablesChecked: tables.filter((t) => t.exact).length,
      tablesTotal: tables.length,
      tables: tables.slice(0, MAX_TABLE_RESULTS),
      rtoExceeded: cmd.maxRestoreSeconds !== undefined && rtoSeconds > cmd.maxRestoreSeconds,
    };
  } finally {
    server?.kill('SIGKILL');
    await removeScratchLogged(target, scratch, ctx, describe(scratch));
  }
}

function describe(s: ScratchRecord): string {
  if (s.engine === 'redis') return `a throwaway redis-server on 127.0.0.1:${s.port}`;
  if (s.engine === 'sqlite') return `the scratch file ${s.database}`;
  if (s.engine === 'files') return `the scratch directory ${s.database}`;
  return `the scratch database ${s.database}`;
}

/** Each table's expected and found rows (found = expected unless the check said otherwise). */
function tableResults(tables: TableStat[], mismatches: Mismatch[]) {
  const bad = new Map(mismatches.map((m) => [m.table, m]));
  const results = tables.map((t) => {
    const m = bad.get(t.table);
    return { table: t.table, expected: t.rows, found: m ? m.actual : t.rows, exact: t.exact, ok: !m };
  });
  for (const m of mismatches)
    if (!tables.some((t) => t.table === m.table))
      results.push({ table: m.table, expected: m.expected, found: m.actual, exact: true, ok: false });
  return results;
}

/** Redis: the RDB restored to a file, checked, and loaded by a throwaway server; its keys counted. */
async function drillRedis(
  cmd: DrillCommand,
  scratch: ScratchRecord,
  ctx: JobContext,
  record: () => Promise<void>,
  started: (c: ChildProcess) => void,
) {
  const tables = await restoreToFile(cmd, scratch.database, ctx);
  const expected = await checkRdb(scratch.database);
  const child = await startScratchRedis(scratch);
  started(child);
  if (child.pid) scratch.pid = child.pid;
  await record();
  const t: TargetSpec = scratchRedisTarget(cmd.target, scratch);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const pong = await redisCmd(t, ['PING'], 2000).catch(() => '');
    if (pong === 'PONG') break;
    if (child.exitCode !== null || Date.now() > deadline)
      throw new AgentError('drill-failed', 'the throwaway redis-server did not start with the restored RDB');
    await new Promise((r) => setTimeout(r, 100));
  }
  const loaded = await keyspace(t);
  const total = loaded.reduce((a, k) => a + k.rows, 0);
  ctx.log(
    'info',
    `the throwaway redis-server loaded ${total} keys${expected !== undefined ? ` (the RDB holds ${expected})` : ''}`,
  );
  const mismatches: Mismatch[] =
    expected !== undefined && total !== expected ? [{ table: 'keys', expected, actual: total }] : [];
  const found = new Map(loaded.map((k) => [k.table, k.rows]));
  return {
    tables: tables.map((x) => ({ ...x, rows: found.get(x.table) ?? 0, exact: false })),
    mismatches,
    bytes: cmd.meta.dumpBytes,
  };
}
