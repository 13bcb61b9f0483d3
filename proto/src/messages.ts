import { z } from 'zod';
import { Command, DumpTool } from './commands.js';
import { EngineId } from './targets.js';
import { WalArchived, WalPruned, WalStatus } from './wal.js';

const Id = z.string().min(1).max(128);
const Uuid = z.uuid();

/** A database the agent found on its own host without being given credentials. */
export const DiscoveredDb = z.object({
  engine: EngineId,
  /** Unix socket (directory for PostgreSQL) or 127.0.0.1. */
  host: z.string().max(1024).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  database: z.string().max(64).optional(),
  user: z.string().max(63).optional(),
  path: z.string().max(4096).optional(),
  version: z.string().max(200).optional(),
});
export type DiscoveredDb = z.infer<typeof DiscoveredDb>;

/** Host facts sent with every heartbeat. */
export const HostFacts = z.object({
  hostname: z.string().max(255),
  os: z.string().max(255),
  arch: z.string().max(64),
  agentVersion: z.string().max(64),
  uptimeSeconds: z.number().nonnegative(),
  hostUptimeSeconds: z.number().nonnegative(),
  load: z.array(z.number()).max(3),
  stateDirFreeBytes: z.number().int().nonnegative().nullable(),
  tools: z.array(DumpTool).max(64),
  queueDepth: z.number().int().nonnegative(),
  outboxDepth: z.number().int().nonnegative(),
  /** Databases on this host (protocol 1.2; absent from older agents). */
  discovered: z.array(DiscoveredDb).max(500).optional(),
});
export type HostFacts = z.infer<typeof HostFacts>;

/** Events an agent records in its outbox; each carries a per-agent sequence number. */
export const AgentEventBody = z.discriminatedUnion('type', [
  z.object({ type: z.literal('command.started'), commandId: Uuid }),
  z.object({ type: z.literal('command.succeeded'), commandId: Uuid, result: z.unknown() }),
  z.object({
    type: z.literal('command.failed'),
    commandId: Uuid,
    error: z.object({ code: z.string().max(64), message: z.string().max(4096) }),
  }),
  z.object({
    type: z.literal('log'),
    level: z.enum(['info', 'warn', 'error']),
    message: z.string().max(4096),
  }),
  z.object({
    type: z.literal('job.progress'),
    jobId: Uuid,
    phase: z.string().max(64),
    bytesIn: z.number().nonnegative(),
    bytesOut: z.number().nonnegative(),
  }),
  /** A backup the agent started on its own schedule (the control plane may have been away). */
  z.object({
    type: z.literal('scheduled.started'),
    jobId: Uuid,
    backupId: Uuid,
    targetId: Uuid,
    scheduleId: Uuid,
    storageId: Uuid,
    /** The link to the control plane was down when it started. */
    disconnected: z.boolean(),
    /** A run missed while the agent was down, caught up once at start. */
    catchUp: z.boolean(),
    startedAt: z.string(),
  }),
  z.object({
    type: z.literal('scheduled.finished'),
    jobId: Uuid,
    ok: z.boolean(),
    result: z.unknown().optional(),
    error: z.object({ code: z.string().max(64), message: z.string().max(4096) }).optional(),
    finishedAt: z.string(),
  }),
  /** Retention removed a backup (meta.json first, then the data). */
  z.object({
    type: z.literal('backup.deleted'),
    backupId: z.string().max(128),
    objectKey: z.string().max(4096),
    reason: z.string().max(1024),
  }),
  z.object({
    type: z.literal('job.log'),
    jobId: Uuid,
    level: z.enum(['info', 'warn', 'error']),
    message: z.string().max(8192),
  }),
  /** A WAL file archived for a physical target, and the archiver's state (protocol 1.7). */
  WalArchived,
  WalStatus,
  WalPruned,
]);
export type AgentEventBody = z.infer<typeof AgentEventBody>;

export const AgentEvent = z.object({
  seq: z.number().int().positive(),
  at: z.string(),
  body: AgentEventBody,
});
export type AgentEvent = z.infer<typeof AgentEvent>;

/** Agent -> control plane. */
export const AgentMessages = {
  hello: z.object({
    agentId: Uuid,
    agentVersion: z.string().max(64),
    protocol: z.object({ major: z.number().int(), minor: z.number().int() }),
    /** Highest event sequence number the control plane has acknowledged, as the agent knows it. */
    eventsAckedUpTo: z.number().int().nonnegative(),
    /** Command ids the agent has recorded and acknowledged but that may not have reached the control plane. */
    recentCommandIds: z.array(Uuid).max(1000),
    /** The configuration version the agent holds (1.3). */
    configVersion: z.number().int().nonnegative().optional(),
  }),
  heartbeat: z.object({ facts: HostFacts }),
  'command.ack': z.object({ commandId: Uuid }),
  event: AgentEvent,
  ping: z.object({ t: z.number() }),
  pong: z.object({ t: z.number() }),
} as const;

/** Control plane -> agent. */
export const ServerMessages = {
  welcome: z.object({
    serverTime: z.string(),
    heartbeatIntervalMs: z.number().int().positive(),
    configVersion: z.number().int().nonnegative(),
    /** Highest event sequence number the control plane has applied for this agent. */
    eventsAckedUpTo: z.number().int().nonnegative(),
    protocol: z.object({ major: z.number().int(), minor: z.number().int() }),
  }),
  command: z.object({ commandId: Uuid, command: Command, expiresAt: z.string() }),
  'event.ack': z.object({ upTo: z.number().int().nonnegative() }),
  'heartbeat.ack': z.object({ serverTime: z.string() }),
  ping: z.object({ t: z.number() }),
  pong: z.object({ t: z.number() }),
} as const;

export type AgentMessageType = keyof typeof AgentMessages;
export type ServerMessageType = keyof typeof ServerMessages;
export type AgentPayload<T extends AgentMessageType> = z.infer<(typeof AgentMessages)[T]>;
export type ServerPayload<T extends ServerMessageType> = z.infer<(typeof ServerMessages)[T]>;

export type Envelope<T extends string, P> = { v: number; type: T; id: string; payload: P };

export type AgentMessage = {
  [K in AgentMessageType]: Envelope<K, AgentPayload<K>>;
}[AgentMessageType];
export type ServerMessage = {
  [K in ServerMessageType]: Envelope<K, ServerPayload<K>>;
}[ServerMessageType];

export const EnvelopeShape = z.object({
  v: z.number().int(),
  type: z.string().max(64),
  id: Id,
  payload: z.unknown(),
});
