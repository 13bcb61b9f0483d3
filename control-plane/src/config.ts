import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

/**
 * All control-plane configuration, parsed once at start-up. Every option is a
 * `DBBACKUP_*` environment variable; `DBBACKUP_CONFIG_FILE` may point at a JSON
 * object with the same keys, which the environment overrides.
 */
/** A URL safe to write into a shell script: scheme, host, optional port and path, nothing else. */
export const SAFE_URL = /^https?:\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?(\/[A-Za-z0-9._~/-]*)?$/;

/** Where agent/pack.mjs writes release bundles in a checkout (and in the image). */
const DEFAULT_BUNDLE_DIR = fileURLToPath(new URL('../../dist/agent-bundles', import.meta.url));

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const Schema = z
  .object({
    DBBACKUP_HOST: z.string().min(1).default('127.0.0.1'),
    DBBACKUP_PORT: int(0, 65535).default(8080),
    DBBACKUP_DATA_DIR: z.string().min(1).default('./data/control-plane'),
    DBBACKUP_DATABASE_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
      .optional(),
    DBBACKUP_EMBEDDED_PG_PORT: int(1, 65535).default(54329),
    DBBACKUP_HEARTBEAT_INTERVAL_MS: int(100, 3_600_000).default(15_000),
    DBBACKUP_COMMAND_TTL_SECONDS: int(1, 30 * 86_400).default(3600),
    DBBACKUP_ENROLLMENT_TOKEN_TTL_SECONDS: int(60, 30 * 86_400).default(86_400),
    DBBACKUP_AGENT_TOKEN_MAX_AGE_SECONDS: int(10, 900).default(300),
    DBBACKUP_CLOCK_SKEW_SECONDS: int(0, 300).default(5),
    DBBACKUP_MAX_AGENT_HANDSHAKES: int(1, 100_000).default(64),
    DBBACKUP_AGENT_ADMISSION_QUEUE: int(0, 1_000_000).default(4096),
    DBBACKUP_SHUTDOWN_TIMEOUT_MS: int(1000, 600_000).default(10_000),
    DBBACKUP_RECONNECT_GRACE_MS: int(0, 3_600_000).default(90_000),
    DBBACKUP_DATABASE_POOL_SIZE: int(2, 1000).default(20),
    DBBACKUP_LOG_LEVEL: z
      .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
      .default('info'),
    DBBACKUP_MAX_BODY_BYTES: int(1024, 64 * 1024 * 1024).default(1024 * 1024),
    DBBACKUP_MASTER_KEY: z
      .string()
      .refine(
        (v) => Buffer.from(v, 'base64').length === 32,
        'must be 32 bytes, base64-encoded (openssl rand -base64 32)',
      )
      .optional(),
    DBBACKUP_TARGET_TEST_TIMEOUT_MS: int(500, 300_000).default(15_000),
    DBBACKUP_MISSED_BACKUP_GRACE_MS: int(0, 30 * 86_400_000).default(3_600_000),
    DBBACKUP_JOB_MAX_DURATION_MS: int(1000, 30 * 86_400_000).default(6 * 3_600_000),
    DBBACKUP_PUBLIC_URL: z
      .string()
      .regex(SAFE_URL, 'must be http(s)://host[:port][/path] (the URL agents and install.sh use)')
      .optional(),
    DBBACKUP_AGENT_BUNDLE_DIR: z.string().min(1).default(DEFAULT_BUNDLE_DIR),
    DBBACKUP_ACCESS_TOKEN_TTL_SECONDS: int(60, 86_400).default(900),
    DBBACKUP_REFRESH_TOKEN_TTL_SECONDS: int(300, 90 * 86_400).default(7 * 86_400),
    DBBACKUP_LOGIN_MAX_FAILURES: int(1, 100).default(5),
    DBBACKUP_LOGIN_LOCKOUT_SECONDS: int(1, 86_400).default(900),
    DBBACKUP_LOGIN_RATE_LIMIT_PER_MINUTE: int(1, 10_000).default(30),
    DBBACKUP_NOTIFY_RETRY_BASE_MS: int(10, 3_600_000).default(5000),
    DBBACKUP_NOTIFY_MAX_ATTEMPTS: int(1, 50).default(6),
    DBBACKUP_NOTIFY_INTERVAL_MS: int(50, 60_000).default(1000),
    DBBACKUP_KEY_ROTATION_INTERVAL_MS: int(50, 600_000).default(2000),
    DBBACKUP_KEY_RETIRE_GRACE_MS: int(0, 30 * 86_400_000).default(3_600_000),
    DBBACKUP_KEY_ROTATION_MAX_WAIT_MS: int(1000, 365 * 86_400_000).default(7 * 86_400_000),
    DBBACKUP_METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  })
  .strict();

export type Config = Readonly<{
  host: string;
  port: number;
  dataDir: string;
  databaseUrl: string | undefined;
  embeddedPgPort: number;
  heartbeatIntervalMs: number;
  commandTtlSeconds: number;
  enrollmentTokenTtlSeconds: number;
  agentTokenMaxAgeSeconds: number;
  clockSkewSeconds: number;
  /** Agent connections admitted at once (authentication to welcome); more are told to come back (503, Retry-After). */
  maxAgentHandshakes: number;
  /** Agent handshakes that may wait in line for a slot (beyond: 503 with Retry-After). */
  agentAdmissionQueue: number;
  /** A graceful stop that takes longer exits 1. */
  shutdownTimeoutMs: number;
  /** After a start, no agent is marked offline for silence before this much time has passed. */
  reconnectGraceMs: number;
  /** Connections this process keeps to its database. */
  databasePoolSize: number;
  logLevel: string;
  maxBodyBytes: number;
  masterKey: string | undefined;
  targetTestTimeoutMs: number;
  missedBackupGraceMs: number;
  jobMaxDurationMs: number;
  publicUrl: string | undefined;
  agentBundleDir: string;
  metricsToken: string | undefined;
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  loginMaxFailures: number;
  loginLockoutSeconds: number;
  loginRateLimitPerMinute: number;
  notifyRetryBaseMs: number;
  notifyMaxAttempts: number;
  notifyIntervalMs: number;
  keyRotationIntervalMs: number;
  keyRetireGraceMs: number;
  keyRotationMaxWaitMs: number;
}>;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Parse configuration from an environment (and the file it names). Throws ConfigError naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv): Config {
  let fromFile: Record<string, unknown> = {};
  const file = env.DBBACKUP_CONFIG_FILE;
  if (file) {
    try {
      fromFile = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigError(`DBBACKUP_CONFIG_FILE: cannot read ${file}: ${(err as Error).message}`);
    }
    if (typeof fromFile !== 'object' || fromFile === null || Array.isArray(fromFile)) {
      throw new ConfigError(`DBBACKUP_CONFIG_FILE: ${file} must hold a JSON object of DBBACKUP_* keys`);
    }
  }
  const fromEnv: Record<string, string> = {};
  for (const key of Object.keys(Schema.shape)) {
    const v = env[key];
    if (v !== undefined && v !== '') fromEnv[key] = v;
  }
  // DATABASE_URL is the conventional name; DBBACKUP_DATABASE_URL wins when both are set.
  if (!fromEnv.DBBACKUP_DATABASE_URL && env.DATABASE_URL) fromEnv.DBBACKUP_DATABASE_URL = env.DATABASE_URL;

  const parsed = Schema.safeParse({ ...fromFile, ...fromEnv });
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const name = i.path.join('.') || '(config)';
      return i.code === 'unrecognized_keys'
        ? `${file ?? 'config'}: unknown keys ${i.keys.join(', ')}`
        : `${name}: ${i.message}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const c = parsed.data;
  return Object.freeze({
    host: c.DBBACKUP_HOST,
    port: c.DBBACKUP_PORT,
    dataDir: path.resolve(c.DBBACKUP_DATA_DIR),
    databaseUrl: c.DBBACKUP_DATABASE_URL,
    embeddedPgPort: c.DBBACKUP_EMBEDDED_PG_PORT,
    heartbeatIntervalMs: c.DBBACKUP_HEARTBEAT_INTERVAL_MS,
    commandTtlSeconds: c.DBBACKUP_COMMAND_TTL_SECONDS,
    enrollmentTokenTtlSeconds: c.DBBACKUP_ENROLLMENT_TOKEN_TTL_SECONDS,
    agentTokenMaxAgeSeconds: c.DBBACKUP_AGENT_TOKEN_MAX_AGE_SECONDS,
    clockSkewSeconds: c.DBBACKUP_CLOCK_SKEW_SECONDS,
    maxAgentHandshakes: c.DBBACKUP_MAX_AGENT_HANDSHAKES,
    agentAdmissionQueue: c.DBBACKUP_AGENT_ADMISSION_QUEUE,
    shutdownTimeoutMs: c.DBBACKUP_SHUTDOWN_TIMEOUT_MS,
    reconnectGraceMs: c.DBBACKUP_RECONNECT_GRACE_MS,
    databasePoolSize: c.DBBACKUP_DATABASE_POOL_SIZE,
    logLevel: c.DBBACKUP_LOG_LEVEL,
    maxBodyBytes: c.DBBACKUP_MAX_BODY_BYTES,
    masterKey: c.DBBACKUP_MASTER_KEY,
    targetTestTimeoutMs: c.DBBACKUP_TARGET_TEST_TIMEOUT_MS,
    missedBackupGraceMs: c.DBBACKUP_MISSED_BACKUP_GRACE_MS,
    jobMaxDurationMs: c.DBBACKUP_JOB_MAX_DURATION_MS,
    publicUrl: c.DBBACKUP_PUBLIC_URL?.replace(/\/+$/, ''),
    agentBundleDir: path.resolve(c.DBBACKUP_AGENT_BUNDLE_DIR),
    metricsToken: c.DBBACKUP_METRICS_TOKEN,
    accessTokenTtlSeconds: c.DBBACKUP_ACCESS_TOKEN_TTL_SECONDS,
    refreshTokenTtlSeconds: c.DBBACKUP_REFRESH_TOKEN_TTL_SECONDS,
    loginMaxFailures: c.DBBACKUP_LOGIN_MAX_FAILURES,
    loginLockoutSeconds: c.DBBACKUP_LOGIN_LOCKOUT_SECONDS,
    loginRateLimitPerMinute: c.DBBACKUP_LOGIN_RATE_LIMIT_PER_MINUTE,
    notifyRetryBaseMs: c.DBBACKUP_NOTIFY_RETRY_BASE_MS,
    notifyMaxAttempts: c.DBBACKUP_NOTIFY_MAX_ATTEMPTS,
    notifyIntervalMs: c.DBBACKUP_NOTIFY_INTERVAL_MS,
    keyRotationIntervalMs: c.DBBACKUP_KEY_ROTATION_INTERVAL_MS,
    keyRetireGraceMs: c.DBBACKUP_KEY_RETIRE_GRACE_MS,
    keyRotationMaxWaitMs: c.DBBACKUP_KEY_ROTATION_MAX_WAIT_MS,
  });
}
