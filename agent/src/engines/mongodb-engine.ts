import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable, Stream, Writable } from 'node:stream';
import type { TargetSpec } from '@dbbackup/proto';
import { AgentError } from '../agent-error.js';
import { childExit, retained } from '../pipeline/child-exit.js';
import type { DumpHandle, Engine, Mismatch, RestoreOptions } from './engine.js';
import { feedInto, firstTool, targetPassword, toolError } from './engine-support.js';

/**
 * MongoDB through mongodump/mongorestore in archive mode (one stream). The
 * password goes into a 0600 YAML config file (--config) that exists only while
 * the tool runs; a `passfile` secret is such a file already. Document counts
 * come from the tools' own reports ("done dumping db.c (N documents)").
 */

const ARCHIVE_MAGIC = Buffer.from([0x6d, 0xe2, 0x99, 0x81]);

function uri(t: TargetSpec): string {
  const c = t.connection;
  if (c.host?.startsWith('/')) return `mongodb://${encodeURIComponent(c.host)}`;
  return `mongodb://${c.host ?? '127.0.0.1'}:${c.port ?? 27017}`;
}

/** Arguments and a config file for the password; `cleanup` removes the file. */
export async function mongoAuth(t: TargetSpec): Promise<{ args: string[]; cleanup: () => Promise<void> }> {
  const args = [`--uri=${uri(t)}`];
  if (t.connection.user) args.push(`--username=${t.connection.user}`, '--authenticationDatabase=admin');
  const s = t.secretRef;
  const v = targetPassword(t);
  if (s.kind === 'passfile') return { args: [...args, `--config=${s.path}`], cleanup: async () => {} };
  if (v !== undefined) {
    const dir = await mkdtemp(path.join(tmpdir(), 'dbb-mongo-'));
    const file = path.join(dir, 'config.yaml');
    await writeFile(file, `password: ${JSON.stringify(v)}\n`, { mode: 0o600 });
    return { args: [...args, `--config=${file}`], cleanup: () => rm(dir, { recursive: true, force: true }) };
  }
  return { args, cleanup: async () => {} };
}

/** mongodump's arguments (after the connection): the archive on stdout, one database or all, one collection at most. */
export function mongodumpArgs(t: TargetSpec): string[] {
  const args = ['--archive', '--quiet=false'];
  const db = t.connection.database;
  const cols = t.options.collections ?? [];
  if (db) args.push(`--db=${db}`);
  if (cols.length > 1)
    throw new AgentError(
      'unsupported',
      'mongodump takes one collection; back up the database and choose collections at restore time',
    );
  if (cols.length === 1) {
    const [cdb, ...rest] = cols[0]!.split('.');
    const coll = rest.join('.');
    if (!db || cdb !== db || !coll)
      throw new AgentError(
        'bad-option',
        `collection ${cols[0]} must be written <database>.<collection> of ${db ?? 'the target database'}`,
      );
    args.push(`--collection=${coll}`);
  }
  return args;
}

/** mongorestore's arguments: into `database` (renaming the source's), `--drop` for clean, collections by --nsInclude. */
export function mongorestoreArgs(source: string | undefined, o: RestoreOptions): string[] {
  const args = ['--archive', '--stopOnError'];
  if (o.conflict === 'clean') args.push('--drop');
  if (source && source !== o.database) args.push(`--nsFrom=${source}.*`, `--nsTo=${o.database}.*`);
  for (const t of o.tables ?? [])
    args.push(`--nsInclude=${t.includes('.') ? t : `${source ?? o.database}.${t}`}`);
  return args;
}

/** "done dumping shop.orders (1200 documents)" -> counts per collection. */
export function parseDumpCounts(stderr: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of stderr.matchAll(/done dumping (\S+) \((\d+) documents?\)/g)) out.set(m[1]!, Number(m[2]));
  return out;
}

/** "1200 document(s) restored successfully. 3 document(s) failed to restore." */
export function parseRestoreCounts(stderr: string): { restored: number; failed: number } | undefined {
  const m = /(\d+) document\(s\) restored successfully\. (\d+) document\(s\) failed to restore/.exec(stderr);
  return m ? { restored: Number(m[1]), failed: Number(m[2]) } : undefined;
}

// The counts of the last restore, for the check that follows it (the jobs lane runs one job at a time).
let lastRestore: { restored: number; failed: number } | undefined;

export const mongodbEngine: Engine = {
  id: 'mongodb',
  formatExtension: 'archive',

  async testConnection(t) {
    const tool = await firstTool(['mongodump'], 'mongodb');
    const { args, cleanup } = await mongoAuth(t);
    try {
      // A dump of nothing: connects and authenticates, writes no data.
      const child = spawn(
        tool.path,
        [...args, '--archive', '--db=admin', '--collection=dbbackup-connection-test'],
        {
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const e = await childExit(child).finally(() => clearTimeout(timer));
      if (e.code !== 0)
        throw toolError(
          'mongodump',
          { exitCode: e.code, signal: e.signal, stderr: e.stderr },
          'connect-failed',
        );
      return { serverVersion: 'MongoDB', toolVersion: tool.version, toolPath: tool.path };
    } finally {
      await cleanup();
    }
  },

  async dump(t, log, into) {
    const tool = await firstTool(['mongodump'], 'mongodb');
    const dumpArgs = mongodumpArgs(t);
    const { args, cleanup } = await mongoAuth(t);
    log(`dumping with ${tool.path} ${dumpArgs.join(' ')}`);
    const child = spawn(tool.path, [...args, ...dumpArgs], {
      stdio: ['ignore', into ? (into as unknown as Stream) : 'pipe', 'pipe'],
    });
    const exit = childExit(child, 1024 * 1024).finally(cleanup);
    const done = exit.then((e) => {
      if (e.code !== 0)
        throw toolError('mongodump', { exitCode: e.code, signal: e.signal, stderr: e.stderr });
    });
    done.catch(() => {});
    const tables = exit.then((e) =>
      [...parseDumpCounts(e.stderr)].map(([table, rows]) => ({ table, rows, exact: true })),
    );
    tables.catch(() => {});
    return {
      stdout: retained(child.stdout),
      done,
      serverVersion: 'MongoDB',
      toolVersion: tool.version,
      tables,
    } satisfies DumpHandle;
  },

  async list(input: Readable) {
    let head: Buffer = Buffer.alloc(0);
    let bytes = 0;
    for await (const c of input) {
      if (head.length < 4) head = Buffer.concat([head, c as Buffer]);
      bytes += (c as Buffer).length;
    }
    if (!head.subarray(0, 4).equals(ARCHIVE_MAGIC))
      throw new AgentError('not-a-dump', 'the stream is not a mongodump archive');
    return { entries: bytes > 0 ? 1 : 0 };
  },

  async restore(t, input, o, log) {
    const tool = await firstTool(['mongorestore'], 'mongodb');
    const { args, cleanup } = await mongoAuth(t);
    const restoreArgs = mongorestoreArgs(t.connection.database, o);
    log(`restoring with ${tool.path} ${restoreArgs.join(' ')}`);
    try {
      const child = spawn(tool.path, [...args, ...restoreArgs], { stdio: ['pipe', 'ignore', 'pipe'] });
      const exited = childExit(child, 1024 * 1024);
      await feedInto(input, child.stdin as Writable, exited);
      const e = await exited;
      if (e.code !== 0)
        throw toolError('mongorestore', { exitCode: e.code, signal: e.signal, stderr: e.stderr });
      lastRestore = parseRestoreCounts(e.stderr);
    } finally {
      await cleanup();
    }
  },

  async postRestoreCheck(_t, _database, expected, tables) {
    const wanted = expected.filter(
      (e) => !tables?.length || tables.some((w) => e.table === w || e.table.endsWith(`.${w}`)),
    );
    const total = wanted.reduce((a, e) => a + e.rows, 0);
    const out: Mismatch[] = [];
    if (lastRestore && (lastRestore.failed > 0 || lastRestore.restored !== total))
      out.push({ table: 'documents', expected: total, actual: lastRestore.restored });
    return out;
  },
};
