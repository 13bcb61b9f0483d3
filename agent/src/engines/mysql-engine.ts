import { spawn } from 'node:child_process';
import type { Readable, Stream, Writable } from 'node:stream';
import type { TargetSpec } from '@dbbackup/proto';
import { execa } from 'execa';
import { AgentError } from '../agent-error.js';
import { childExit, retained } from '../pipeline/child-exit.js';
import type { DumpHandle, Engine, Mismatch, TableStat } from './engine.js';
import { clientHas, DumpScanner, feedInto, firstTool, targetPassword, toolError } from './engine-support.js';

/**
 * MySQL and MariaDB through their own clients: `mariadb-dump`/`mysqldump` with
 * --single-transaction (a consistent InnoDB snapshot without locking writers),
 * restored through `mariadb`/`mysql`. Every query goes through the client
 * binary too, so the agent needs no MySQL driver.
 *
 * Credentials: a password from the agent's environment reaches the client as
 * MYSQL_PWD in the child's environment only; a `passfile` secret is a MySQL
 * option file (`[client]` / `password=`) passed as --defaults-extra-file.
 */

const DUMP_TOOLS = ['mariadb-dump', 'mysqldump'];
const CLIENT_TOOLS = ['mariadb', 'mysql'];

/** Connection options and environment for the client tools; the password never goes on a command line. */
export function mysqlArgs(t: TargetSpec): { args: string[]; env: Record<string, string> } {
  const c = t.connection;
  const args: string[] = [];
  const env: Record<string, string> = {};
  const s = t.secretRef;
  // The host decides: a declared secret only to a destination it is bound to.
  const password = targetPassword(t);
  if (password !== undefined) env.MYSQL_PWD = password;
  // --defaults-extra-file must come first.
  if (s.kind === 'passfile') args.push(`--defaults-extra-file=${s.path}`);
  if (c.host?.startsWith('/')) args.push(`--socket=${c.host}`);
  else {
    args.push(`--host=${c.host ?? '127.0.0.1'}`, '--protocol=TCP');
    if (c.port) args.push(`--port=${c.port}`);
  }
  if (c.user) args.push(`--user=${c.user}`);
  return { args, env };
}

/** Run SQL through the client in batch mode; rows of tab-separated fields. */
export async function mysqlQuery(
  t: TargetSpec,
  sql: string,
  database?: string,
  timeoutMs = 60_000,
): Promise<string[][]> {
  const client = await firstTool(CLIENT_TOOLS, 'mysql');
  const { args, env } = mysqlArgs(t);
  const r = await execa(
    client.path,
    [
      ...args,
      '--connect-timeout=10',
      '--batch',
      '--skip-column-names',
      '-e',
      sql,
      ...(database ? [`--database=${database}`] : []),
    ],
    {
      env,
      reject: false,
      timeout: timeoutMs,
      stdin: 'ignore',
    },
  );
  if (r.timedOut)
    throw new AgentError('timeout', `${client.name} did not answer within ${timeoutMs / 1000} s`);
  if (r.exitCode !== 0) throw toolError(client.name, r, 'connect-failed');
  return r.stdout
    .split('\n')
    .filter((l) => l.length)
    .map((l) => l.split('\t'));
}

const ident = (s: string) => `\`${s.replace(/`/g, '``')}\``;
const literal = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

async function maxTrxId(t: TargetSpec): Promise<string> {
  const r = await mysqlQuery(t, "SHOW GLOBAL STATUS LIKE 'Innodb_max_trx_id'");
  return r[0]?.[1] ?? '';
}

async function countRows(t: TargetSpec, database: string, onlyInnodb: boolean): Promise<Map<string, number>> {
  const tables = await mysqlQuery(
    t,
    `SELECT table_name, engine FROM information_schema.tables WHERE table_schema = ${literal(database)} AND table_type = 'BASE TABLE' ORDER BY 1`,
  );
  const out = new Map<string, number>();
  if (!tables.length) return out;
  const names = tables.filter(([, e]) => !onlyInnodb || e === 'InnoDB').map(([n]) => n!);
  if (!names.length) return out;
  const union = names
    .map((n) => `SELECT ${literal(n)}, COUNT(*) FROM ${ident(database)}.${ident(n)}`)
    .join(' UNION ALL ');
  const rows = await mysqlQuery(t, `START TRANSACTION WITH CONSISTENT SNAPSHOT; ${union}; COMMIT;`);
  for (const [n, c] of rows) out.set(n!, Number(c));
  return out;
}

async function dbState(t: TargetSpec, database: string): Promise<{ exists: boolean; tables: number }> {
  const r = await mysqlQuery(
    t,
    `SELECT (SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ${literal(database)}),
            (SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ${literal(database)})`,
  );
  return { exists: Number(r[0]?.[0]) > 0, tables: Number(r[0]?.[1]) };
}

export const mysqlEngine: Engine = {
  id: 'mysql',
  formatExtension: 'sql',

  async testConnection(t) {
    const [rows, tool] = await Promise.all([
      mysqlQuery(t, 'SELECT VERSION()', t.connection.database, 15_000),
      firstTool(DUMP_TOOLS, 'mysql'),
    ]);
    return { serverVersion: rows[0]?.[0] ?? 'unknown', toolVersion: tool.version, toolPath: tool.path };
  },

  async dump(t, log, into) {
    const database = t.connection.database!;
    const tool = await firstTool(DUMP_TOOLS, 'mysql');
    const version = (await mysqlQuery(t, 'SELECT VERSION()', database, 15_000))[0]?.[0] ?? 'unknown';
    log(`using ${tool.path} (${tool.version}) for server ${version}`);
    // Row counts come from the agent's own consistent snapshot, taken as the dump starts.
    // They are exact only if no InnoDB write transaction started from before either
    // snapshot until the dump ended (Innodb_max_trx_id unchanged); otherwise estimates.
    const [cs] = await mysqlQuery(
      t,
      `SELECT default_character_set_name, default_collation_name FROM information_schema.schemata WHERE schema_name = ${literal(database)}`,
    );
    const engineMeta = cs ? { characterSet: cs[0]!, collation: cs[1]! } : undefined;
    const [sz] = await mysqlQuery(
      t,
      `SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables WHERE table_schema = ${literal(database)}`,
    );
    const trxBefore = await maxTrxId(t);
    const { args, env } = mysqlArgs(t);
    const child = spawn(
      tool.path,
      [
        ...args,
        '--single-transaction',
        '--routines',
        '--events',
        '--triggers',
        '--hex-blob',
        '--default-character-set=utf8mb4',
        '--no-tablespaces',
        database,
      ],
      {
        env: { ...process.env, ...env },
        stdio: ['ignore', into ? (into as unknown as Stream) : 'pipe', 'pipe'],
      },
    );
    const done = childExit(child).then(
      (e) => {
        if (e.code !== 0)
          throw toolError(tool.name, { exitCode: e.code, signal: e.signal, stderr: e.stderr });
      },
      (err: Error) => {
        throw new AgentError('tool-failed', `${tool.name}: ${err.message}`);
      },
    );
    done.catch(() => {});
    // Counted while the dump runs: off its critical path, and still exact when no write
    // transaction started between trxBefore and the dump's end (both snapshots are then the same).
    const counting = countRows(t, database, true);
    counting.catch(() => {});
    const tables = done.then(async (): Promise<TableStat[]> => {
      const counts = await counting;
      const exact = (await maxTrxId(t)) === trxBefore;
      if (!exact) log('writes ran during the dump: row counts are recorded as estimates');
      return [...counts].map(([table, rows]) => ({ table, rows, exact }));
    });
    tables.catch(() => {});
    return {
      stdout: retained(child.stdout),
      done,
      serverVersion: version,
      toolVersion: tool.version,
      tables,
      sizeHint: Number(sz?.[0] ?? 0),
      ...(engineMeta ? { engineMeta } : {}),
    } satisfies DumpHandle;
  },

  async list(input: Readable) {
    const scan = new DumpScanner(['\nCREATE TABLE ', '\nINSERT INTO ']);
    await scan.consume(input);
    if (!/^-- (MariaDB|MySQL) dump/m.test(scan.head))
      throw new AgentError('not-a-dump', 'the stream does not start like a mysqldump/mariadb-dump file');
    if (!/-- Dump completed/.test(scan.tail))
      throw new AgentError(
        'truncated-dump',
        'the dump does not end with "-- Dump completed": it was cut short',
      );
    return { entries: scan.counts.reduce((a, b) => a + b, 0) };
  },

  async restore(t, input, o, log) {
    if (o.tables?.length)
      throw new AgentError(
        'unsupported',
        'restoring single tables is supported for PostgreSQL only; restore the whole database',
      );
    const st = await dbState(t, o.database);
    const db = ident(o.database);
    if (o.conflict === 'create' && st.exists)
      throw new AgentError(
        'target-exists',
        `database ${o.database} exists (conflict policy create); use clean or another name`,
      );
    if (o.conflict === 'fail' && st.tables > 0)
      throw new AgentError(
        'target-not-empty',
        `database ${o.database} is not empty (conflict policy fail); use clean or create`,
      );
    // Created with the source database's character set and collation, so that routines and
    // tables without their own take the same defaults.
    const m = o.engineMeta;
    const create = `CREATE DATABASE ${db}${
      m?.characterSet && /^\w+$/.test(m.characterSet) ? ` CHARACTER SET ${m.characterSet}` : ''
    }${m?.collation && /^\w+$/.test(m.collation) ? ` COLLATE ${m.collation}` : ''}`;
    if (o.conflict === 'clean') {
      log(`dropping and re-creating database ${o.database} (conflict policy clean)`);
      await mysqlQuery(t, `DROP DATABASE IF EXISTS ${db}; ${create}`);
    } else if (!st.exists) await mysqlQuery(t, create);
    const client = await firstTool(CLIENT_TOOLS, 'mysql');
    const { args, env } = mysqlArgs(t);
    log(`restoring into ${o.database} with ${client.path}`);
    // The dump is data, not a script for the client: --binary-mode turns off client commands
    // (\! runs a shell command) and --sandbox (MariaDB) refuses anything touching files.
    const safety = ['--binary-mode', ...((await clientHas(client.path, '--sandbox')) ? ['--sandbox'] : [])];
    const child = spawn(
      client.path,
      [...args, ...safety, '--max-allowed-packet=1073741824', `--database=${o.database}`],
      {
        env: { ...process.env, ...env },
        stdio: ['pipe', 'ignore', 'pipe'],
      },
    );
    const exited = childExit(child);
    await feedInto(input, child.stdin as Writable, exited);
    const e = await exited;
    if (e.code !== 0) throw toolError(client.name, { exitCode: e.code, signal: e.signal, stderr: e.stderr });
  },

  async postRestoreCheck(t, database, expected) {
    const actual = await countRows(t, database, false);
    const out: Mismatch[] = [];
    for (const e of expected) {
      if (!e.exact) continue;
      const n = actual.get(e.table);
      if (n !== e.rows) out.push({ table: e.table, expected: e.rows, actual: n ?? null });
    }
    return out;
  },
};
