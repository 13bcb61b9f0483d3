import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type TransformCallback, type Writable } from 'node:stream';
import { execa } from 'execa';
import { AgentError } from '../agent-error.js';
import { childExit } from '../pipeline/child-exit.js';
import type { DumpHandle, Engine, Mismatch } from './engine.js';
import { DumpScanner, feedInto, firstTool, toolError } from './engine-support.js';

/**
 * SQLite through the `sqlite3` command-line shell. `.dump` reads every table
 * inside one transaction (a savepoint), so the dump is one consistent snapshot
 * while other processes keep writing: in WAL mode writers are never blocked; in
 * rollback-journal mode they wait (busy) while the dump holds its shared lock.
 * Row counts are taken from the dump stream itself, so they are exact.
 * A restore always writes a new file (beside the destination), checks it with
 * PRAGMA integrity_check, and only then moves it into place.
 */

const HEADER = Buffer.from('SQLite format 3\0');

/** A URI that opens an existing file only (the shell would otherwise create an empty database). */
function uri(file: string, mode: 'rw' | 'rwc' | 'ro' = 'rw'): string {
  return `file:${file.replace(/%/g, '%25').replace(/\?/g, '%3f').replace(/#/g, '%23')}?mode=${mode}`;
}

async function checkFile(file: string): Promise<void> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    throw new AgentError('connect-failed', `cannot open SQLite file ${file}: ${(err as Error).message}`);
  }
  try {
    const b = Buffer.alloc(16);
    await fh.read(b, 0, 16, 0);
    if (!b.equals(HEADER)) throw new AgentError('connect-failed', `${file} is not a SQLite 3 database`);
  } finally {
    await fh.close();
  }
}

async function shell(file: string, sql: string, mode: 'rw' | 'ro' = 'rw'): Promise<string[]> {
  const tool = await firstTool(['sqlite3'], 'sqlite');
  // The SQL goes in on stdin: a row-count check of tens of thousands of tables is far
  // longer than one command-line argument may be.
  const r = await execa(tool.path, ['-bail', '-batch', '-safe', '-cmd', '.timeout 30000', uri(file, mode)], {
    reject: false,
    timeout: 10 * 60_000,
    input: sql,
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.exitCode !== 0) throw toolError('sqlite3', r, 'query-failed');
  return r.stdout.split('\n').filter((l) => l.length);
}

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** `INSERT INTO t VALUES(` / `INSERT INTO "my t" VALUES(`: the table's name, unquoted. */
export function insertTarget(line: string): string | undefined {
  const m = /^INSERT INTO ("(?:[^"]|"")+"|[^\s(]+) VALUES\(/.exec(line);
  if (!m) return undefined;
  const n = m[1]!;
  return n.startsWith('"') ? n.slice(1, -1).replace(/""/g, '"') : n;
}

/**
 * Passes the dump through, counting `INSERT INTO <table>` lines per table (the
 * shell writes one row per line; newlines inside values are escaped), and fails
 * the stream if the shell reported an error in-band or the dump was not committed.
 */
export class SqliteDumpCounter extends Transform {
  readonly rows = new Map<string, number>();
  readonly #needle = Buffer.from('\nINSERT INTO ');
  readonly #scan = new DumpScanner(['\n/**** ERROR:'], 64);
  #carry: Buffer = Buffer.alloc(0);

  constructor() {
    super({ highWaterMark: 1024 * 1024 });
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback) {
    this.#scan.update(chunk);
    const buf = this.#carry.length ? Buffer.concat([this.#carry, chunk]) : chunk;
    let from = 0;
    let keepFrom = Math.max(0, buf.length - this.#needle.length + 1);
    for (;;) {
      const at = buf.indexOf(this.#needle, from);
      if (at < 0) break;
      const lineStart = at + 1;
      const end = buf.indexOf(' VALUES(', lineStart);
      if (end < 0 || end - lineStart > 2048) {
        if (buf.length - lineStart < 2100) {
          keepFrom = at; // the name is cut by the chunk's end: look again with the next chunk
          break;
        }
        from = lineStart;
        continue;
      }
      const name = insertTarget(buf.subarray(lineStart, end + 8).toString('utf8'));
      if (name !== undefined) this.rows.set(name, (this.rows.get(name) ?? 0) + 1);
      from = end;
      keepFrom = Math.max(keepFrom, from);
    }
    this.#carry = Buffer.from(buf.subarray(Math.min(keepFrom, buf.length)));
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback) {
    if (this.#scan.counts[0])
      return cb(new AgentError('tool-failed', `sqlite3 .dump reported an error: ${this.#scan.tail.trim()}`));
    if (!this.#scan.tail.endsWith('COMMIT;\n'))
      return cb(
        new AgentError('tool-failed', 'sqlite3 .dump did not finish with COMMIT: the dump is incomplete'),
      );
    cb();
  }
}

export const sqliteEngine: Engine = {
  id: 'sqlite',
  formatExtension: 'sql',

  async testConnection(t) {
    const file = t.connection.path!;
    await checkFile(file);
    const tool = await firstTool(['sqlite3'], 'sqlite');
    const v = await shell(file, 'SELECT sqlite_version(); PRAGMA quick_check(1);');
    if (v[1] !== 'ok')
      throw new AgentError('integrity-check-failed', `quick_check of ${file}: ${v.slice(1).join('; ')}`);
    return { serverVersion: `SQLite ${v[0]}`, toolVersion: tool.version, toolPath: tool.path };
  },

  async dump(t, log) {
    const file = t.connection.path!;
    await checkFile(file);
    const tool = await firstTool(['sqlite3'], 'sqlite');
    // What .dump leaves out but applications rely on (user_version is often a schema version).
    const [version, userVersion, applicationId, journalMode, pageSize] = await shell(
      file,
      'SELECT sqlite_version(); PRAGMA user_version; PRAGMA application_id; PRAGMA journal_mode; PRAGMA page_size;',
    );
    const engineMeta = {
      userVersion: userVersion ?? '0',
      applicationId: applicationId ?? '0',
      journalMode: journalMode ?? 'delete',
      pageSize: pageSize ?? '4096',
    };
    log(`dumping ${file} with ${tool.path} (${tool.version})`);
    const child = spawn(tool.path, ['-bail', '-batch', uri(file)], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.on('error', () => {});
    child.stdin.end('.timeout 30000\n.dump\n');
    const counter = new SqliteDumpCounter();
    child.stdout.pipe(counter);
    child.stdout.on('error', (err) => counter.destroy(err));
    const counted = new Promise<void>((resolve, reject) => {
      counter.once('end', resolve);
      counter.once('error', reject);
    });
    counted.catch(() => {});
    const done = childExit(child).then(async (e) => {
      if (e.code !== 0) throw toolError('sqlite3', { exitCode: e.code, signal: e.signal, stderr: e.stderr });
    });
    done.catch(() => {});
    const tables = Promise.all([done, counted]).then(() =>
      [...counter.rows]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([table, rows]) => ({ table, rows, exact: true })),
    );
    tables.catch(() => {});
    return {
      stdout: counter,
      done,
      serverVersion: `SQLite ${version ?? 'unknown'}`,
      toolVersion: tool.version,
      tables,
      engineMeta,
      sizeHint:
        (await stat(file).then(
          (st) => st.size,
          () => 0,
        )) +
        (await stat(`${file}-wal`).then(
          (st) => st.size,
          () => 0,
        )),
    } satisfies DumpHandle;
  },

  async list(input) {
    const scan = new DumpScanner(['\nCREATE TABLE ', '\nINSERT INTO ', '\n/**** ERROR:']);
    await scan.consume(input);
    if (!scan.head.startsWith('PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;'))
      throw new AgentError('not-a-dump', 'the stream does not start like a sqlite3 .dump');
    if (scan.counts[2] || !scan.tail.endsWith('COMMIT;\n'))
      throw new AgentError('truncated-dump', 'the dump does not end with COMMIT: it was cut short or failed');
    return { entries: scan.counts[0]! + scan.counts[1]! };
  },

  async restore(_t, input, o, log) {
    if (o.tables?.length)
      throw new AgentError('unsupported', 'restoring single tables is supported for PostgreSQL only');
    const dest = o.database;
    const exists = await stat(dest).then(
      () => true,
      () => false,
    );
    if (exists && o.conflict !== 'clean')
      throw new AgentError(
        'target-exists',
        `${dest} exists (conflict policy ${o.conflict}); restore into a new file or use clean`,
      );
    const tmp = path.join(
      path.dirname(dest),
      `.${path.basename(dest)}.dbbackup-${randomBytes(4).toString('hex')}`,
    );
    const tool = await firstTool(['sqlite3'], 'sqlite');
    log(`restoring into ${tmp}, then moving it to ${dest}`);
    try {
      const m = o.engineMeta ?? {};
      const int = (v: string | undefined) => (v && /^-?\d{1,10}$/.test(v) ? v : undefined);
      const pageSize = int(m.pageSize);
      const child = spawn(
        tool.path,
        // -safe: the dump is data; dot-commands that run programs or touch other files
        // (.shell, .system, .output, .load, ATTACH) are refused.
        [
          '-bail',
          '-batch',
          '-safe',
          ...(pageSize ? ['-cmd', `PRAGMA page_size=${pageSize}`] : []),
          uri(tmp, 'rwc'),
        ],
        { stdio: ['pipe', 'ignore', 'pipe'] },
      );
      const exited = childExit(child);
      await feedInto(input, child.stdin as Writable, exited);
      const e = await exited;
      if (e.code !== 0) throw toolError('sqlite3', { exitCode: e.code, signal: e.signal, stderr: e.stderr });
      // Put back what .dump does not carry: user_version, application_id, WAL mode.
      const pragmas = [
        int(m.userVersion) ? `PRAGMA user_version=${int(m.userVersion)};` : '',
        int(m.applicationId) ? `PRAGMA application_id=${int(m.applicationId)};` : '',
        m.journalMode === 'wal' ? 'PRAGMA journal_mode=WAL;' : '',
      ].join('');
      if (pragmas) await shell(tmp, pragmas);
      const check = await shell(tmp, 'PRAGMA integrity_check;');
      if (check.join('\n') !== 'ok')
        throw new AgentError(
          'integrity-check-failed',
          `integrity_check of the restored file: ${check.slice(0, 10).join('; ')}`,
        );
      if (exists) {
        // A stale WAL beside the old file would be replayed onto the new one.
        await rm(`${dest}-wal`, { force: true });
        await rm(`${dest}-shm`, { force: true });
      }
      await rename(tmp, dest);
    } finally {
      await rm(tmp, { force: true });
      await rm(`${tmp}-journal`, { force: true });
    }
  },

  async postRestoreCheck(_t, database, expected) {
    const check = await shell(database, 'PRAGMA integrity_check;');
    const out: Mismatch[] = [];
    if (check.join('\n') !== 'ok')
      out.push({ table: 'PRAGMA integrity_check', expected: 0, actual: check.length });
    const exact = expected.filter((e) => e.exact);
    if (exact.length) {
      const rows = await shell(
        database,
        exact.map((e) => `SELECT count(*) FROM ${quote(e.table)};`).join('\n'),
      );
      exact.forEach((e, i) => {
        const n = rows[i] === undefined ? null : Number(rows[i]);
        if (n !== e.rows) out.push({ table: e.table, expected: e.rows, actual: n });
      });
    }
    return out;
  },
};
