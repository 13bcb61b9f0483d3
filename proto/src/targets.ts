import { z } from 'zod';
import { RetentionPolicy } from './retention.js';

/**
 * Where a database's password comes from, on the agent's host. The control
 * plane only ever holds this reference, never the password.
 */
export const SecretRef = z.discriminatedUnion('kind', [
  /** Peer or trust authentication, e.g. over a unix socket. */
  z.object({ kind: z.literal('none') }),
  /**
   * A secret declared on the agent's host by name (`dbbackup-agent secret add`), bound
   * there to the destinations it may be sent to (protocol 1.4).
   */
  z.object({ kind: z.literal('secret'), name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/) }),
  /** Before 0.1.2: a password file on the agent host. Existing targets only (bound at upgrade). */
  z.object({ kind: z.literal('passfile'), path: z.string().min(1).max(4096) }),
  /** Before 0.1.2: an environment variable of the agent process. Existing targets only. */
  z.object({ kind: z.literal('env'), name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/) }),
]);

/** What an operator may name for a new or changed target: a declared secret, or none. */
export const OperatorSecretRef = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('none') }),
  z.object({ kind: z.literal('secret'), name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/) }),
]);

/**
 * Where a target's connection leads, as a secret's binding names it: a unix socket
 * path (a directory for PostgreSQL), or `host:port` with the engine's default port.
 */
export function destinationOf(t: { engine: EngineId; connection: Connection }): string | undefined {
  const c = t.connection;
  if (t.engine === 'sqlite' || t.engine === 'files') return undefined;
  if (c.host?.startsWith('/')) return c.host.replace(/\/+$/, '');
  // libpq with no host uses its unix socket directory (Debian's).
  if (!c.host && t.engine === 'postgresql') return '/var/run/postgresql';
  const port = c.port ?? DEFAULT_PORTS[t.engine];
  return `${c.host ?? '127.0.0.1'}:${port}`;
}

const DEFAULT_PORTS: Record<EngineId, number> = {
  postgresql: 5432,
  mysql: 3306,
  redis: 6379,
  mongodb: 27017,
  sqlite: 0,
  files: 0,
};
export type SecretRef = z.infer<typeof SecretRef>;

/** A name people give things (targets, storage profiles): safe in paths and logs. */
export const ResourceName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'letters, digits, _ . - (max 63)');

export const ENGINE_IDS = ['postgresql', 'mysql', 'sqlite', 'redis', 'mongodb', 'files'] as const;
export const EngineId = z.enum(ENGINE_IDS);
export type EngineId = z.infer<typeof EngineId>;

export const Connection = z
  .object({
    /** Host name, IP, or a unix socket (a directory for PostgreSQL, the socket file for MySQL and Redis). */
    host: z.string().min(1).max(1024).optional(),
    port: z.number().int().min(1).max(65535).optional(),
    /** Database name (PostgreSQL, MySQL; optional for MongoDB, where absent means all). */
    database: z.string().min(1).max(64).optional(),
    user: z.string().min(1).max(63).optional(),
    /** An absolute path on the agent host: the SQLite file, or the directory of a files target. */
    path: z.string().min(2).max(4096).startsWith('/').optional(),
  })
  .strict();
export type Connection = z.infer<typeof Connection>;

/** What each engine needs in its connection; the message names the missing field. */
export function connectionProblem(engine: EngineId, c: Connection): string | undefined {
  switch (engine) {
    case 'postgresql':
    case 'mysql':
      return c.database ? undefined : `connection.database is required for ${engine}`;
    case 'sqlite':
    case 'files':
      return c.path ? undefined : `connection.path (absolute) is required for ${engine}`;
    default:
      return undefined;
  }
}

/**
 * A database name an operator gives is an identifier, never a connection string or
 * a tool option: letters, digits, `_`, `$`, `-` and `.`, not starting with `-` or `.`,
 * at most 63 characters (so no `=`, no spaces, no `/`, no `:`).
 */
export const DATABASE_NAME = /^[A-Za-z0-9_$][A-Za-z0-9_$.-]{0,62}$/;

export function databaseNameProblem(name: string): string | undefined {
  return DATABASE_NAME.test(name)
    ? undefined
    : 'database must be a plain name: letters, digits, _ $ . - (not first: - or .), at most 63 characters; no =, spaces, / or :';
}

/**
 * What a restore names as its destination, per engine: a database name
 * (PostgreSQL, MySQL, MongoDB), an absolute path that is a new file (SQLite) or a
 * directory (files); Redis restores into the target's own instance and takes none.
 */
export function restoreDestinationProblem(
  engine: EngineId,
  database: string | undefined,
): string | undefined {
  switch (engine) {
    case 'postgresql':
    case 'mysql':
    case 'mongodb':
      if (!database) return `database is required to restore ${engine}`;
      return databaseNameProblem(database);
    case 'sqlite':
    case 'files':
      if (!database?.startsWith('/') || database.split('/').includes('..'))
        return `database must be an absolute path without '..' to restore ${engine} into`;
      return undefined;
    case 'redis':
      return database
        ? 'a Redis restore replaces the target instance’s data; do not name a database'
        : undefined;
  }
}

/** A short name for what a target backs up, used in object keys and file names. */
export function targetDbName(t: { engine: EngineId; connection: Connection }): string {
  if (t.connection.database) return t.connection.database;
  if (t.connection.path) {
    const base = t.connection.path.replace(/\/+$/, '').split('/').pop() ?? '';
    return base.replace(/\.(sqlite3?|db)$/i, '') || 'root';
  }
  return t.engine === 'mongodb' ? 'all' : `${t.engine}${t.connection.port ? `-${t.connection.port}` : ''}`;
}

export const CompressAlgo = z.enum(['zstd', 'gzip', 'none']);
export type CompressAlgo = z.infer<typeof CompressAlgo>;

export const TargetOptions = z
  .object({
    compression: CompressAlgo.default('zstd'),
    compressionLevel: z.number().int().min(1).max(19).optional(),
    /** PostgreSQL: the dump program (pg_dump or YugabyteDB's ysql_dump, by name or absolute path); no version matching then. */
    dumpTool: z
      .string()
      .max(4096)
      .regex(/^(\/[^\0]*\/)?(pg_dump|ysql_dump)$/, 'pg_dump or ysql_dump, by name or absolute path')
      .refine((p) => !p.split('/').includes('..'), "no '..' in the dumpTool path")
      .optional(),
    /** MongoDB: only these collections (`db.collection`). */
    collections: z.array(z.string().min(1).max(255)).max(1000).optional(),
    /** Files: glob patterns (relative to the directory) left out of the archive. */
    exclude: z.array(z.string().min(1).max(1024)).max(1000).optional(),
    /**
     * Redis: the command (argv) that starts the instance again after a restore replaced
     * its RDB file. The agent runs it only if its own DBBACKUP_ALLOWED_COMMANDS lists it.
     */
    startCommand: z.array(z.string().min(1).max(4096)).min(1).max(64).optional(),
    /** What old backups go away (applied by the agent after each good backup, and daily). */
    retention: RetentionPolicy.optional(),
    /**
     * PostgreSQL: physical base backups of the whole cluster (pg_basebackup) instead of a
     * logical dump of one database, for point-in-time recovery with WAL archiving.
     */
    physical: z.boolean().optional(),
    /** Physical targets: archive WAL continuously (pg_receivewal on a replication slot). Default true. */
    walArchive: z.boolean().optional(),
    /**
     * Physical targets: the longest a written WAL record waits before its segment is
     * completed and archived (the agent calls pg_switch_wal()): the RPO of an idle
     * database. Default 60.
     */
    walSwitchSeconds: z.number().int().min(5).max(86_400).optional(),
    /**
     * Physical targets on PostgreSQL 17 or newer with summarize_wal on: base backups are
     * incremental against the previous one (pg_basebackup --incremental), and every Nth
     * starts a new chain with a full one. Elsewhere every base backup stays full.
     */
    incrementalFullEvery: z.number().int().min(2).max(32).optional(),
  })
  .strict();

/** Why a target's options do not fit its engine (undefined when they do). */
export function optionsProblem(engine: EngineId, o: z.infer<typeof TargetOptions>): string | undefined {
  const walOnly =
    o.walArchive !== undefined || o.walSwitchSeconds !== undefined || o.incrementalFullEvery !== undefined;
  if (o.physical && engine !== 'postgresql') return 'options.physical is for PostgreSQL targets only';
  if (o.physical && o.dumpTool) return 'options.dumpTool does not apply to a physical target (pg_basebackup)';
  if (walOnly && !o.physical)
    return 'options.walArchive, options.walSwitchSeconds and options.incrementalFullEvery need options.physical';
  return undefined;
}

/** Whether the agent archives this target's WAL. */
export function archivesWal(t: { engine: EngineId; options: { physical?: boolean; walArchive?: boolean } }) {
  return t.engine === 'postgresql' && t.options.physical === true && t.options.walArchive !== false;
}

export const TargetSpec = z
  .object({
    id: z.string(),
    engine: EngineId,
    name: ResourceName,
    connection: Connection,
    secretRef: SecretRef,
    options: TargetOptions.default({ compression: 'zstd' }),
  })
  .superRefine((t, ctx) => {
    const p = connectionProblem(t.engine, t.connection);
    if (p) ctx.addIssue({ code: 'custom', path: ['connection'], message: p });
    const o = optionsProblem(t.engine, t.options);
    if (o) ctx.addIssue({ code: 'custom', path: ['options'], message: o });
  });
export type TargetSpec = z.infer<typeof TargetSpec>;

export const S3StorageSpec = z.object({
  kind: z.literal('s3'),
  id: z.string(),
  endpoint: z.string().url().optional(),
  region: z.string().min(1).max(64).default('us-east-1'),
  bucket: z.string().min(3).max(63),
  prefix: z.string().max(512).default(''),
  forcePathStyle: z.boolean().default(false),
  partSizeBytes: z
    .number()
    .int()
    .min(5 * 1024 * 1024)
    .max(512 * 1024 * 1024)
    .default(8 * 1024 * 1024),
  queueSize: z.number().int().min(1).max(16).default(2),
  credentials: z.object({ accessKeyId: z.string().min(1), secretAccessKey: z.string().min(1) }).optional(),
});
export const LocalStorageSpec = z.object({
  kind: z.literal('local'),
  id: z.string(),
  directory: z.string().min(1).max(4096),
  prefix: z.string().max(512).default(''),
});
export const StorageSpec = z.discriminatedUnion('kind', [S3StorageSpec, LocalStorageSpec]);
export type StorageSpec = z.infer<typeof StorageSpec>;

/** The `<filename>.meta.json` commit marker beside every backup object. */
export const BackupMeta = z
  .object({
    filename: z.string(),
    objectKey: z.string(),
    version: z.literal(1),
    backupId: z.string(),
    targetId: z.string(),
    targetName: z.string(),
    agentId: z.string(),
    dbType: z.string(),
    dbHost: z.string(),
    dbPort: z.number().nullable(),
    dbName: z.string(),
    startTime: z.string(),
    endTime: z.string(),
    durationMs: z.number(),
    sizeBytes: z.number(),
    dumpBytes: z.number(),
    sha256: z.string(),
    compressAlgo: CompressAlgo,
    encryptAlgo: z.string(),
    segmentBytes: z.number(),
    chunks: z.number(),
    status: z.literal('completed'),
    wrappedKey: z.string(),
    kekId: z.string(),
    engineVersion: z.string(),
    toolVersion: z.string(),
    tables: z.array(z.object({ table: z.string(), rows: z.number(), exact: z.boolean() })),
    /** What an engine needs to recreate the source faithfully (MySQL: the database's character set and collation). */
    engineMeta: z.record(z.string(), z.string()).optional(),
    /** The agent's Ed25519 signature over the rest (meta-signature.ts); absent before 0.1.2. */
    signature: z.string().max(256).optional(),
  })
  .loose();
export type BackupMeta = z.infer<typeof BackupMeta>;
