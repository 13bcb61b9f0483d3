import { z } from 'zod';
import { BackupMeta, StorageSpec, TargetSpec } from './targets.js';

/**
 * Commands the control plane sends to an agent, as one discriminated union
 * keyed by `kind`. Adding a command is a minor protocol version: add a schema
 * here and a handler on the agent.
 */
export const PingCommand = z.object({ kind: z.literal('ping'), echo: z.string().max(256).optional() });
export const ProbeCommand = z.object({ kind: z.literal('probe') });

export const TargetTestCommand = z.object({ kind: z.literal('target.test'), target: TargetSpec });
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
  meta: BackupMeta,
  /** The backup's data key, re-wrapped by the control plane to this agent's own encryption key. */
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

export const Command = z.discriminatedUnion('kind', [
  PingCommand,
  ProbeCommand,
  TargetTestCommand,
  BackupCommand,
  VerifyCommand,
  RestoreCommand,
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
