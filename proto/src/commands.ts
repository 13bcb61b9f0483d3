import { z } from 'zod';
import { BackupMetaSummary } from './results.js';
import { RetentionPolicy } from './retention.js';
import { CompressAlgo, StorageSpec, TargetSpec } from './targets.js';

/**
 * Commands the control plane sends to an agent, as one discriminated union
 * keyed by `kind`. Adding a command is a minor protocol version: add a schema
 * here and a handler on the agent.
 */
export const PingCommand = z.object({ kind: z.literal('ping'), echo: z.string().max(256).optional() });
export const ProbeCommand = z.object({ kind: z.literal('probe') });

export const TargetTestCommand = z.object({ kind: z.literal('target.test'), target: TargetSpec });
/** Write a small object to a storage profile from the agent's host, read it back, delete it (the profile's test). */
export const StorageTestCommand = z.object({ kind: z.literal('storage.test'), storage: StorageSpec });
export const BackupCommand = z.object({
  kind: z.literal('backup'),
  jobId: z.string(),
  backupId: z.string(),
  target: TargetSpec,
  storage: StorageSpec,
  /** The control plane's key-encryption public key (JWK) and its id; the data key is wrapped to it. */
  kek: z.object({ kid: z.string(), publicJwk: z.record(z.string(), z.string()) }),
  naming: z.object({ env: z.string(), agentName: z.string() }),
});
const RestoreSource = {
  jobId: z.string(),
  backupId: z.string(),
  target: TargetSpec,
  storage: StorageSpec,
  /** Bounded: a long table list stays in meta.json, which the agent reads when it needs it. */
  meta: BackupMetaSummary,
  /**
   * The backup's data key, re-wrapped by the control plane to this agent's own encryption key,
   * bound to this backup and this agent and expiring (key-binding.ts).
   */
  wrappedKeyForAgent: z.string(),
};
export const VerifyCommand = z.object({ kind: z.literal('verify'), ...RestoreSource });
export const RestoreCommand = z.object({
  kind: z.literal('restore'),
  ...RestoreSource,
  database: z.string().min(1).max(4096),
  conflict: z.enum(['fail', 'clean', 'create']),
  tables: z.array(z.string().min(1).max(127)).max(1000).optional(),
});

/**
 * A restore drill: the backup restored into a scratch destination the agent makes and owns
 * (never the target's own database), checked, measured and removed whatever happened.
 */
export const DrillCommand = z.object({
  kind: z.literal('drill'),
  ...RestoreSource,
  /** A restore slower than this is reported (rto_exceeded); the drill still completes. */
  maxRestoreSeconds: z.number().positive().optional(),
});

/** A schedule as the agent runs it: its own croner clock, the storage resolved (with credentials). */
export const AgentSchedule = z.object({
  id: z.string(),
  cron: z.string().min(1).max(200),
  timezone: z.string().min(1).max(64),
  enabled: z.boolean(),
  storage: StorageSpec,
  compression: CompressAlgo.optional(),
});
export type AgentSchedule = z.infer<typeof AgentSchedule>;

/** Everything an agent needs to back up on its own while the control plane is away. */
export const AgentConfig = z.object({
  version: z.number().int().nonnegative(),
  naming: z.object({ env: z.string(), agentName: z.string() }),
  kek: z.object({ kid: z.string(), publicJwk: z.record(z.string(), z.string()) }),
  targets: z
    .array(
      z.object({
        target: TargetSpec,
        schedules: z.array(AgentSchedule).max(100),
        /** Backups whose newest restore drill failed: retention does not count them as good. */
        unproven: z.array(z.string()).max(1000).optional(),
        /** Backups retention must keep: the newest one a drill proved, while a newer one failed its drill. */
        keep: z.array(z.string()).max(10).optional(),
        /** A physical target's WAL archive: where the agent uploads WAL continuously (1.7). */
        wal: z.object({ storage: StorageSpec }).optional(),
      }),
    )
    .max(1000),
});
export type AgentConfig = z.infer<typeof AgentConfig>;

/**
 * The agent's configuration (schedules and what they need). The control plane's
 * command row holds only the version; the configuration, with storage
 * credentials, is built as the command is sent, so a stale queued sync always
 * delivers the latest configuration.
 */
export const ConfigSyncCommand = z.object({
  kind: z.literal('config.sync'),
  version: z.number().int().nonnegative(),
  config: AgentConfig.optional(),
});

/** Apply a retention policy now (the API's cleanup): meta.json first, then data; deletions reported. */
export const RetentionApplyCommand = z.object({
  kind: z.literal('retention.apply'),
  target: TargetSpec,
  storage: StorageSpec,
  naming: z.object({ env: z.string(), agentName: z.string() }),
  policy: RetentionPolicy,
});

/**
 * Delete one backup from storage on an operator's request (meta.json first, then data),
 * with the same guards as retention: never the newest good backup, never one a kept
 * incremental base backup is built on, never the newest one a drill proved.
 */
export const BackupDeleteCommand = z.object({
  kind: z.literal('backup.delete'),
  target: TargetSpec,
  storage: StorageSpec,
  naming: z.object({ env: z.string(), agentName: z.string() }),
  backupId: z.uuid(),
  reason: z.string().min(1).max(200),
});

/**
 * Rewrite one backup's meta.json with its data key wrapped to a new key-encryption
 * key (key rotation). The data object is not touched; the agent checks that the
 * meta.json it rewrites is the backup named (id and data checksum) and writes it
 * back in one atomic put.
 */
export const MetaRewriteCommand = z.object({
  kind: z.literal('meta.rewrite'),
  storage: StorageSpec,
  metaKey: z.string().min(1).max(1024),
  backupId: z.uuid(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  wrappedKey: z.string().min(1).max(4096),
  kekId: z.string().min(1).max(128),
});

/** Where a point-in-time restore stops: a time, an LSN, or the end of the archive. */
export const RecoveryTarget = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('time'), time: z.string().max(64) }),
  z.object({ kind: z.literal('lsn'), lsn: z.string().regex(/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i) }),
  z.object({ kind: z.literal('latest') }),
]);
export type RecoveryTarget = z.infer<typeof RecoveryTarget>;

/**
 * A data directory a restore may create: an absolute path of plain characters (it is
 * written into restore_command, which PostgreSQL runs through a shell), no `..`.
 */
export const DataDirectory = z
  .string()
  .max(1024)
  .regex(/^\/[A-Za-z0-9_./-]+$/, 'an absolute path of letters, digits, _ . / - only')
  .refine((p) => !p.split('/').includes('..') && p !== '/', "not '/' and no '..'");

/** A base backup a restore reads: where it is, its metadata, its data key re-wrapped for this agent. */
const BaseBackupRef = z.object({
  backupId: z.string(),
  storage: StorageSpec,
  meta: BackupMetaSummary,
  wrappedKeyForAgent: z.string().min(1).max(4096),
});

const WalToFetch = z.object({
  name: z.string().regex(/^([0-9A-F]{24}|[0-9A-F]{8}\.history)$/),
  objectKey: z.string().min(1).max(4096),
  sizeBytes: z.number().int().nonnegative(),
  /** This file's data key re-wrapped for this agent (bid `wal/<name>`, use restore, expiring). */
  wrappedKeyForAgent: z.string().min(1).max(4096),
});

/**
 * Restore a physical target to a point in time (1.7): the base backup unpacked into a new,
 * empty data directory, the WAL after it fetched, decrypted and handed to PostgreSQL's
 * recovery, the server started on `port` and promoted at the target.
 */
export const PitrRestoreCommand = z.object({
  kind: z.literal('pitr.restore'),
  jobId: z.string(),
  target: TargetSpec,
  base: BaseBackupRef,
  /**
   * An incremental base backup's chain before it (PostgreSQL 17), oldest (the full one)
   * first; combined with it by pg_combinebackup before recovery (1.8).
   */
  ancestors: z.array(BaseBackupRef).max(31).optional(),
  walStorage: StorageSpec,
  wal: z.array(WalToFetch).max(1200),
  /** The files given run to the end of the archive (no later WAL exists yet). */
  walToArchiveEnd: z.boolean(),
  recoveryTarget: RecoveryTarget,
  dataDirectory: DataDirectory,
  port: z.number().int().min(1024).max(65535),
});

/**
 * A restore drill of a physical target's chain (1.8): its newest base backup and all WAL
 * after it replayed to the end of the archive in a scratch data directory the agent makes,
 * on a free port; the server checked once promoted, stopped, and everything removed.
 */
export const PitrDrillCommand = PitrRestoreCommand.omit({
  kind: true,
  recoveryTarget: true,
  dataDirectory: true,
  port: true,
  walToArchiveEnd: true,
}).extend({
  kind: z.literal('pitr.drill'),
  /** The replay must reach this LSN (the end of the newest WAL file given), or the drill fails. */
  expectEndLsn: z.string().regex(/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/),
  maxRestoreSeconds: z.number().positive().optional(),
});

/**
 * Verify a physical target's WAL chain (1.7): every file is in storage at its catalogued size
 * and every segment of it authenticates under its own key. Nothing is written.
 */
export const WalVerifyCommand = z.object({
  kind: z.literal('wal.verify'),
  jobId: z.string(),
  target: TargetSpec,
  walStorage: StorageSpec,
  files: z.array(WalToFetch).max(1200),
});

export const Command = z.discriminatedUnion('kind', [
  MetaRewriteCommand,
  ConfigSyncCommand,
  RetentionApplyCommand,
  BackupDeleteCommand,
  PingCommand,
  ProbeCommand,
  TargetTestCommand,
  StorageTestCommand,
  BackupCommand,
  VerifyCommand,
  RestoreCommand,
  DrillCommand,
  PitrRestoreCommand,
  PitrDrillCommand,
  WalVerifyCommand,
]);
export type Command = z.infer<typeof Command>;
export type CommandKind = Command['kind'];
export const COMMAND_KINDS = Command.options.map((o) => o.shape.kind.value) as CommandKind[];

/** Results, keyed by command kind. */
export const DumpTool = z.object({
  name: z.string(),
  path: z.string(),
  version: z.string().nullable(),
});
export type DumpTool = z.infer<typeof DumpTool>;

export const ReachableServer = z.object({
  engine: z.enum(['postgresql', 'mysql', 'redis', 'mongodb']),
  address: z.string(),
  via: z.enum(['tcp', 'unix']),
});
export type ReachableServer = z.infer<typeof ReachableServer>;

export const PingResult = z.object({ echo: z.string().optional(), agentTime: z.string() });
export const ProbeResult = z.object({ tools: z.array(DumpTool), servers: z.array(ReachableServer) });
export type ProbeResult = z.infer<typeof ProbeResult>;
