import { z } from 'zod';

/**
 * Where a database's password comes from, on the agent's host. The control
 * plane only ever holds this reference, never the password.
 */
export const SecretRef = z.discriminatedUnion('kind', [
  /** Peer or trust authentication, e.g. over a unix socket. */
  z.object({ kind: z.literal('none') }),
  /** A libpq-style password file on the agent host. */
  z.object({ kind: z.literal('passfile'), path: z.string().min(1).max(4096) }),
  /** An environment variable of the agent process. */
  z.object({ kind: z.literal('env'), name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/) }),
]);
export type SecretRef = z.infer<typeof SecretRef>;

/** A name people give things (targets, storage profiles): safe in paths and logs. */
export const ResourceName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'letters, digits, _ . - (max 63)');

export const Connection = z
  .object({
    /** Host name, IP, or a unix-socket directory (starting with /). */
    host: z.string().min(1).max(1024).optional(),
    port: z.number().int().min(1).max(65535).optional(),
    database: z.string().min(1).max(63),
    user: z.string().min(1).max(63).optional(),
  })
  .strict();

export const CompressAlgo = z.enum(['zstd', 'gzip', 'none']);
export type CompressAlgo = z.infer<typeof CompressAlgo>;

export const TargetOptions = z
  .object({
    compression: CompressAlgo.default('zstd'),
    compressionLevel: z.number().int().min(1).max(19).optional(),
  })
  .strict();

export const TargetSpec = z.object({
  id: z.string(),
  engine: z.enum(['postgresql']),
  name: ResourceName,
  connection: Connection,
  secretRef: SecretRef,
  options: TargetOptions.default({ compression: 'zstd' }),
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
  queueSize: z.number().int().min(1).max(16).default(4),
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
  })
  .loose();
export type BackupMeta = z.infer<typeof BackupMeta>;
