import { spawn } from 'node:child_process';
import type { Readable, Stream } from 'node:stream';
import { execa } from 'execa';
import type pg from 'pg';
import { AgentError } from '../agent-error.js';
import { childExit, retained } from '../pipeline/child-exit.js';
import type { DumpHandle, Engine, Mismatch, TableStat } from './engine.js';
import { client, libpqEnv, serverInfo } from './postgres-client.js';
import { restorePostgres } from './postgres-restore.js';
import { pickTool, toolFor } from './postgres-tools.js';

export { conninfoDbname } from './postgres-client.js';
export { allowedTool, pickTool } from './postgres-tools.js';

import { toolError } from './engine-support.js';
import { feedTool } from './tool-feed.js';

/** Tables up to this size get an exact count(*); larger ones report the planner's estimate. */
const EXACT_COUNT_MAX_BYTES = 512 * 1024 * 1024;

const STATS_SQL = `
  SELECT format('%I.%I', n.nspname, c.relname) AS tbl,
         CASE WHEN pg_relation_size(c.oid) <= $1 AND has_table_privilege(c.oid, 'SELECT')
              THEN (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text::bigint
              ELSE greatest(c.reltuples, 0)::bigint END AS n,
         pg_relation_size(c.oid) <= $1 AND has_table_privilege(c.oid, 'SELECT') AS exact
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
   ORDER BY 1`;

async function tableStats(cl: pg.Client): Promise<TableStat[]> {
  const r = await cl.query<{ tbl: string; n: string; exact: boolean }>(STATS_SQL, [EXACT_COUNT_MAX_BYTES]);
  return r.rows.map((row) => ({ table: row.tbl, rows: Number(row.n), exact: row.exact }));
}

export const postgresEngine: Engine = {
  id: 'postgresql',
  formatExtension: 'pgdump',

  async testConnection(t) {
    const cl = await client(t);
    try {
      const s = await serverInfo(cl);
      const tool = await toolFor(t, 'pg_dump', s.major);
      return { serverVersion: s.version, toolVersion: tool.version, toolPath: tool.path };
    } finally {
      await cl.end().catch(() => {});
    }
  },

  async dump(t, log, into) {
    // Hold a repeatable-read transaction, export its snapshot, dump from that
    // snapshot and count rows in it: the counts describe exactly what was dumped.
    const cl = await client(t);
    let released = false;
    const release = async () => {
      if (released) return;
      released = true;
      await cl.query('ROLLBACK').catch(() => {});
      await cl.end().catch(() => {});
    };
    try {
      const s = await serverInfo(cl);
      const tool = await toolFor(t, 'pg_dump', s.major);
      log(`using ${tool.path} (${tool.version}) for server ${s.version}`);
      await cl.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const snap = await cl.query<{ id: string }>('SELECT pg_export_snapshot() AS id');
      const snapshot = snap.rows[0]!.id;
      const size = await cl.query<{ s: string }>('SELECT pg_database_size(current_database()) AS s');
      // --lock-wait-timeout: a table held in an exclusive lock fails the dump after 5 min instead of hanging it.
      const args = [
        '--format=custom',
        '--compress=0',
        '--no-password',
        `--snapshot=${snapshot}`,
        '--lock-wait-timeout=300000',
      ];
      // A plain child process: its stdout is an OS pipe that can be handed to the compressor directly.
      const child = spawn(tool.path, args, {
        env: { ...process.env, ...libpqEnv(t) },
        stdio: ['ignore', into ? (into as unknown as Stream) : 'pipe', 'pipe'],
      });
      const done = childExit(child).then(
        async (e) => {
          await release();
          if (e.code !== 0)
            throw toolError('pg_dump', {
              exitCode: e.code ?? undefined,
              signal: e.signal ?? undefined,
              stderr: e.stderr,
            });
        },
        async (err: Error) => {
          await release();
          throw new AgentError('tool-failed', `pg_dump: ${err.message}`);
        },
      );
      done.catch(() => {});
      // Counted in the same snapshot while pg_dump runs (the connection queues the
      // ROLLBACK behind it), so the counts stay off the dump's critical path.
      const tables = tableStats(cl);
      tables.catch(() => {});
      return {
        stdout: retained(child.stdout),
        done,
        serverVersion: s.version,
        toolVersion: tool.version,
        tables,
        sizeHint: Number(size.rows[0]?.s ?? 0),
      } satisfies DumpHandle;
    } catch (err) {
      await release();
      throw err;
    }
  },

  async list(input: Readable) {
    const tool = await pickTool('pg_restore', 0);
    const proc = execa(tool.path, ['--list'], { stdin: 'pipe', reject: false, buffer: true });
    await feedTool(input, proc.stdin!);
    const r = await proc;
    if (r.exitCode !== 0) throw toolError('pg_restore --list', r);
    const entries = r.stdout.split('\n').filter((l) => l && !l.startsWith(';')).length;
    if (entries === 0) throw new AgentError('empty-dump', 'pg_restore --list found no entries');
    return { entries };
  },

  restore: restorePostgres,

  async postRestoreCheck(t, database, expected, tables) {
    const cl = await client(t, database);
    try {
      const actual = new Map((await tableStats(cl)).map((s) => [s.table, s]));
      const wanted = tables?.length
        ? expected.filter((e) => tables.some((w) => e.table === w || e.table.endsWith(`.${w}`)))
        : expected;
      const mismatches: Mismatch[] = [];
      for (const e of wanted) {
        if (!e.exact) continue;
        const a = actual.get(e.table);
        if (!a || a.rows !== e.rows)
          mismatches.push({ table: e.table, expected: e.rows, actual: a?.rows ?? null });
      }
      return mismatches;
    } finally {
      await cl.end().catch(() => {});
    }
  },
};
