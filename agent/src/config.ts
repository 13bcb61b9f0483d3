import type { DiscoveryConfig } from './discovery.js';

/**
 * The agent's settings, each from a command-line flag or its DBBACKUP_* environment
 * variable, parsed once at start (`loadAgentConfig`). A bad value stops the agent with a
 * UsageError naming the flag and the variable. Modules read the settings through
 * `agentConfig()`, never `process.env`; only declared secrets (DBBACKUP_SECRET_<NAME>),
 * whose names are the host's own, are read from the environment by host-secrets.ts.
 */
export interface AgentConfig {
  stateDir: string;
  logLevel: string;
  server: string | undefined;
  enrollmentToken: string | undefined;
  hostname: string | undefined;
  caFile: string | undefined;
  labels: Record<string, string>;
  backoffBaseMs: number;
  backoffCapMs: number;
  stableAfterMs: number;
  /** How often the databases on this host are looked for again. */
  discoveryIntervalMs: number;
  /** A scheduled run missed while the agent was down is run at start if it is at most this old. */
  scheduleGraceMs: number;
  /** How old a data object with no meta.json must be before the sweep removes it. */
  orphanGraceMs: number;
  /** The most completed WAL a physical target's spool may hold before receiving pauses. */
  walSpoolMaxBytes: number;
  /** The host's declared secrets (0600; never in the state directory). */
  secretsFile: string;
  /** What discovery looks at; undefined when DBBACKUP_DISCOVERY=off. */
  discovery: DiscoveryConfig | undefined;
  /** Directories a dump tool named by a target may run from (DBBACKUP_TOOL_DIRS). */
  toolDirs: string[];
  /** Directories a point-in-time restore may create a data directory in (DBBACKUP_RESTORE_DIRS). */
  restoreDirs: string[];
  /** Commands a Redis restore may run to start the server again (DBBACKUP_ALLOWED_COMMANDS, one per line). */
  allowedCommands: string[];
  /** First S3 retry delay (doubling, 5 attempts); undefined = the store's default. */
  s3RetryBaseMs: number | undefined;
  /** Fault injection for the tests: die with SIGKILL at this point. */
  testCrashPoint: string | undefined;
  /** Fault injection for the tests: `job-events-full` fails every job log/progress write. */
  testFault: string | undefined;
  /** Fault injection for the tests: the free bytes a drill sees where it would write. */
  testFreeBytes: number | undefined;
}

export class UsageError extends Error {}

export type Flags = Record<string, string | boolean | string[] | undefined>;

/** Each flag's environment variable. */
export const ENV: Record<string, string> = {
  server: 'DBBACKUP_SERVER',
  token: 'DBBACKUP_ENROLLMENT_TOKEN',
  'state-dir': 'DBBACKUP_STATE_DIR',
  hostname: 'DBBACKUP_HOSTNAME',
  'ca-file': 'DBBACKUP_CA_FILE',
  'log-level': 'DBBACKUP_LOG_LEVEL',
  'backoff-base-ms': 'DBBACKUP_BACKOFF_BASE_MS',
  'backoff-cap-ms': 'DBBACKUP_BACKOFF_CAP_MS',
  'stable-after-ms': 'DBBACKUP_STABLE_AFTER_MS',
  'discovery-interval-ms': 'DBBACKUP_DISCOVERY_INTERVAL_MS',
  'schedule-grace-ms': 'DBBACKUP_SCHEDULE_GRACE_MS',
  'orphan-grace-ms': 'DBBACKUP_ORPHAN_GRACE_MS',
  'wal-spool-max-bytes': 'DBBACKUP_WAL_SPOOL_MAX_BYTES',
  'secrets-file': 'DBBACKUP_SECRETS_FILE',
};

/** A flag's value, else its environment variable's; empty counts as absent. */
export function opt(flags: Flags, name: string, env: NodeJS.ProcessEnv): string | undefined {
  const v = flags[name];
  if (typeof v === 'string' && v !== '') return v;
  const e = ENV[name] ? env[ENV[name]] : undefined;
  return e === '' ? undefined : e;
}

function intOpt(flags: Flags, name: string, env: NodeJS.ProcessEnv, def: number, min: number, max: number) {
  const raw = opt(flags, name, env);
  if (raw === undefined) return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(
      `--${name} / ${ENV[name]}: expected an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`,
    );
  }
  return n;
}

function labels(flags: Flags, env: NodeJS.ProcessEnv): Record<string, string> {
  const list = [
    ...((flags.label as string[] | undefined) ?? []),
    ...(env.DBBACKUP_LABELS ?? '').split(',').filter(Boolean),
  ];
  const out: Record<string, string> = {};
  for (const item of list) {
    const i = item.indexOf('=');
    if (i <= 0)
      throw new UsageError(`--label / DBBACKUP_LABELS: expected key=value, got ${JSON.stringify(item)}`);
    out[item.slice(0, i).trim()] = item.slice(i + 1).trim();
  }
  return out;
}

const list = (v: string | undefined, dflt: string) =>
  (v ?? dflt)
    .split(/[,:]/)
    .map((x) => x.trim())
    .filter(Boolean);

/** Discovery's settings; every list is comma- (or colon-) separated, empty turns a probe off. */
export function discoveryConfig(env: NodeJS.ProcessEnv): DiscoveryConfig | undefined {
  if (/^(off|false|0|no)$/i.test(env.DBBACKUP_DISCOVERY ?? '')) return undefined;
  return {
    pgSocketDirs: list(env.DBBACKUP_DISCOVER_PG_SOCKET_DIRS, '/run/postgresql,/var/run/postgresql,/tmp'),
    mysqlSockets: list(
      env.DBBACKUP_DISCOVER_MYSQL_SOCKETS,
      '/run/mysqld/mysqld.sock,/var/run/mysqld/mysqld.sock',
    ),
    redis: (env.DBBACKUP_DISCOVER_REDIS ?? '127.0.0.1:6379')
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean)
      .map((x) => {
        const i = x.lastIndexOf(':');
        return { host: x.slice(0, i), port: Number(x.slice(i + 1)) };
      })
      .filter((r) => r.host && Number.isInteger(r.port) && r.port > 0 && r.port < 65536),
    sqlitePaths: list(env.DBBACKUP_DISCOVER_SQLITE_PATHS, ''),
  };
}

function s3RetryBase(env: NodeJS.ProcessEnv): number | undefined {
  const base = Number(env.DBBACKUP_S3_RETRY_BASE_MS);
  return Number.isInteger(base) && base > 0 ? base : undefined;
}

/** Every setting, from the flags and the environment. */
export function loadAgentConfig(flags: Flags, env: NodeJS.ProcessEnv): AgentConfig {
  return {
    stateDir: opt(flags, 'state-dir', env) ?? '/var/lib/dbbackup-agent',
    logLevel: opt(flags, 'log-level', env) ?? 'info',
    server: opt(flags, 'server', env),
    enrollmentToken: opt(flags, 'token', env),
    hostname: opt(flags, 'hostname', env),
    caFile: opt(flags, 'ca-file', env),
    labels: labels(flags, env),
    backoffBaseMs: intOpt(flags, 'backoff-base-ms', env, 1000, 10, 600_000),
    backoffCapMs: intOpt(flags, 'backoff-cap-ms', env, 60_000, 10, 3_600_000),
    stableAfterMs: intOpt(flags, 'stable-after-ms', env, 30_000, 0, 3_600_000),
    discoveryIntervalMs: intOpt(flags, 'discovery-interval-ms', env, 300_000, 1000, 86_400_000),
    scheduleGraceMs: intOpt(flags, 'schedule-grace-ms', env, 3_600_000, 0, 7 * 86_400_000),
    orphanGraceMs: intOpt(flags, 'orphan-grace-ms', env, 6 * 3_600_000, 0, 30 * 86_400_000),
    walSpoolMaxBytes: intOpt(flags, 'wal-spool-max-bytes', env, 10 * 1024 ** 3, 64 * 1024 ** 2, 2 ** 50),
    secretsFile: opt(flags, 'secrets-file', env) ?? '/etc/dbbackup/secrets.json',
    discovery: discoveryConfig(env),
    restoreDirs: (env.DBBACKUP_RESTORE_DIRS ?? '/var/lib/postgresql:/srv:/tmp')
      .split(':')
      .filter((d) => d.startsWith('/')),
    toolDirs: (env.DBBACKUP_TOOL_DIRS ?? '/usr/bin:/usr/local/bin:/usr/lib/postgresql:/opt')
      .split(':')
      .filter((d) => d.startsWith('/')),
    allowedCommands: (env.DBBACKUP_ALLOWED_COMMANDS ?? '')
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean),
    s3RetryBaseMs: s3RetryBase(env),
    testCrashPoint: env.DBBACKUP_TEST_CRASH_POINT || undefined,
    testFault: env.DBBACKUP_TEST_FAULT || undefined,
    testFreeBytes: env.DBBACKUP_TEST_FREE_BYTES ? Number(env.DBBACKUP_TEST_FREE_BYTES) : undefined,
  };
}

let current: AgentConfig | undefined;

/** Set once at start by the command line. */
export function setAgentConfig(c: AgentConfig) {
  current = c;
}

/** The agent's settings; in-process use without a command line (the unit tests) reads the environment once. */
export function agentConfig(): AgentConfig {
  current ??= loadAgentConfig({}, process.env);
  return current;
}
