import { realpathSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { TargetSpec } from '@dbbackup/proto';
import { execa } from 'execa';
import { AgentError } from '../agent-error.js';
import { agentConfig } from '../config.js';

/** Finding pg_dump and pg_restore: the installed versions, the one a server needs, and the one a target names. */

export type Tool = { path: string; major: number; version: string };

/** The PostgreSQL client programs the agent runs. */
export type PgToolName =
  | 'pg_dump'
  | 'pg_restore'
  | 'pg_basebackup'
  | 'pg_receivewal'
  | 'pg_ctl'
  | 'pg_combinebackup';

/** What `--version` said for a tool file, with the file identity it was said for. */
const probed = new Map<string, { sig: string; tool: Tool | null }>();

/**
 * One candidate's version. A file already asked is not run again while it and the set
 * of installed majors stay the same (Debian's /usr/bin/pg_dump wrapper answers for
 * the newest one): a package upgrade changes the file and it is asked again.
 */
async function probeTool(file: string, installed: string): Promise<Tool | null> {
  const st = await stat(file).catch(() => undefined);
  if (!st?.isFile()) return null;
  const sig = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${installed}`;
  const hit = probed.get(file);
  if (hit?.sig === sig) return hit.tool;
  const r = await execa(file, ['--version'], { reject: false, timeout: 5000, stdin: 'ignore' });
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(r.stdout ?? '');
  const tool =
    r.exitCode === 0 && m?.[1] ? { path: file, major: Number(m[1]), version: r.stdout.trim() } : null;
  probed.set(file, { sig, tool });
  return tool;
}

/** Every runnable `name` under /usr/lib/postgresql/<major>/bin and on PATH, in that order. */
async function toolVersions(name: PgToolName): Promise<Tool[]> {
  const dirs = new Set<string>();
  const majors = await readdir('/usr/lib/postgresql').catch(() => [] as string[]);
  for (const m of majors) dirs.add(`/usr/lib/postgresql/${m}/bin`);
  for (const d of (process.env.PATH ?? '').split(path.delimiter)) if (d) dirs.add(d);
  const installed = majors.sort().join(',');
  const tools = await Promise.all([...dirs].map((d) => probeTool(path.join(d, name), installed)));
  return tools.filter((t): t is Tool => t !== null);
}

/**
 * A dump tool a target names by path runs only from a directory this host allows
 * (DBBACKUP_TOOL_DIRS, colon-separated; default /usr/bin, /usr/local/bin,
 * /usr/lib/postgresql, /opt), judged by where the path really leads.
 */
export function allowedTool(named: string, dirs = agentConfig().toolDirs): string {
  if (!named.startsWith('/')) return named;
  let real: string;
  try {
    real = realpathSync(named);
  } catch {
    throw new AgentError('tool-missing', `${named} (the target's dumpTool) does not exist`);
  }
  const ok = dirs.some((d) => real.startsWith(`${d.replace(/\/+$/, '')}/`));
  if (!ok)
    throw new AgentError(
      'tool-not-allowed',
      `${named} (the target's dumpTool) is not in a directory this host allows for tools (${dirs.join(':')}; DBBACKUP_TOOL_DIRS)`,
    );
  return real;
}

/**
 * The dump tool a target names itself (options.dumpTool, e.g. YugabyteDB's ysql_dump),
 * else the matching pg_dump/pg_restore.
 */
export async function toolFor(
  t: TargetSpec,
  name: 'pg_dump' | 'pg_restore',
  serverMajor: number,
): Promise<Tool> {
  const named = name === 'pg_dump' ? t.options.dumpTool : undefined;
  if (!named) return pickTool(name, serverMajor);
  const own = allowedTool(named);
  const r = await execa(own, ['--version'], { reject: false, timeout: 5000 });
  if (r.exitCode !== 0)
    throw new AgentError(
      'tool-missing',
      `${own} (the target's dumpTool) does not run: ${String(r.stderr || r.message).slice(0, 500)}`,
    );
  return { path: own, major: serverMajor, version: r.stdout.trim() };
}

/**
 * The pg_dump/pg_restore for a server: the same major version when there is
 * one, else the oldest newer one; a tool older than the server cannot dump it.
 */
export async function pickTool(name: PgToolName, serverMajor: number): Promise<Tool> {
  const tools = await toolVersions(name);
  const same = tools.find((t) => t.major === serverMajor);
  if (same) return same;
  const newer = tools.filter((t) => t.major > serverMajor).sort((a, b) => a.major - b.major)[0];
  if (newer) return newer;
  const have = tools.length ? tools.map((t) => `${t.major} (${t.path})`).join(', ') : 'none';
  throw new AgentError(
    'tool-too-old',
    `the server is PostgreSQL ${serverMajor} but no ${name} of version ${serverMajor} or newer is installed (found: ${have}); ` +
      `install postgresql-client-${serverMajor} on this host`,
  );
}

/**
 * A program that must be the server's own major version (pg_ctl starting a restored
 * data directory: the server binaries beside it are what will read it).
 */
export async function exactTool(name: PgToolName, serverMajor: number): Promise<Tool> {
  const tools = await toolVersions(name);
  const same = tools.find((t) => t.major === serverMajor);
  if (same) return same;
  throw new AgentError(
    'tool-missing',
    `the backup is of PostgreSQL ${serverMajor}, but no ${name} of that version is installed on this host; ` +
      `install postgresql-${serverMajor}`,
  );
}
