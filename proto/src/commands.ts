import { z } from 'zod';

/**
 * Commands the control plane sends to an agent, as one discriminated union
 * keyed by `kind`. Adding a command is a minor protocol version: add a schema
 * here and a handler on the agent.
 */
export const PingCommand = z.object({ kind: z.literal('ping'), echo: z.string().max(256).optional() });
export const ProbeCommand = z.object({ kind: z.literal('probe') });

export const Command = z.discriminatedUnion('kind', [PingCommand, ProbeCommand]);
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
