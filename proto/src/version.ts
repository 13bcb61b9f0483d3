/**
 * Wire protocol version between agent and control plane.
 *
 * The major version goes in every envelope (`v`). A peer refuses a major it
 * does not speak. Minor versions only add optional fields or new message
 * types, which an older peer ignores (unknown *command kinds* are failed
 * by the agent with a clear error instead of being silently dropped).
 *
 * History:
 *   1.0  hello/welcome, heartbeat, ping/pong, command push + ack,
 *        sequenced agent events acknowledged by high-water mark;
 *        commands: ping, probe.
 *   1.1  commands target.test, backup, verify, restore; events job.progress, job.log.
 *   1.2  engines mysql, sqlite, redis, mongodb, files (target connection.path, engine
 *        options, BackupMeta.engineMeta); heartbeat facts.discovered; a restore's
 *        destination may be a path.
 *   1.3  command config.sync (schedules run by the agent's own clock); events
 *        scheduled.started / scheduled.finished; hello.configVersion.
 *   1.4  command meta.rewrite (key rotation re-wraps a backup's data key in its meta.json).
 *   1.5  secretRef kind `secret` (declared on the agent's host); data keys bound to their
 *        backup in the JWE header (bid/aid/tid), re-wrapped keys to backup, agent, use and
 *        expiry; backup results a schema (BackupResult) with bounded table counts
 *        (tablesTotal); meta.json signed by its agent.
 *   1.6  command drill (a restore into a scratch destination the agent makes, checks,
 *        measures and removes).
 *   1.7  target option `physical` (PostgreSQL base backups with pg_basebackup) with WAL
 *        archiving (config targets[].wal; events wal.archived, wal.status); command
 *        pitr.restore (a base backup and WAL into a new data directory, to a point in time).
 *   1.8  command pitr.drill (a physical target's chain replayed in a scratch data directory,
 *        checked and removed).
 *   1.9  commands backup.delete (one backup removed from storage on an operator's request) and
 *        storage.test (a storage profile written, read back and cleaned from the agent's host).
 */
export const PROTOCOL_MAJOR = 1;
export const PROTOCOL_MINOR = 9;
export const PROTOCOL_VERSION = `${PROTOCOL_MAJOR}.${PROTOCOL_MINOR}`;

/** Largest WebSocket frame either side accepts, in bytes. */
export const MAX_FRAME_BYTES = 1024 * 1024;

/** The WebSocket path agents connect to, on the control plane's HTTP port. */
export const AGENT_CONNECT_PATH = '/v1/agent/connect';

/** The WebSocket URL of a control plane given by its base URL (http(s) or ws(s)). */
export function agentConnectUrl(server: string): string {
  return `${server.replace(/\/+$/, '').replace(/^http/i, 'ws')}${AGENT_CONNECT_PATH}`;
}

/** WebSocket close codes used by both sides (4000-4999 are application codes). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  invalidPayload: 1007,
  policyViolation: 1008,
  tooBig: 1009,
  unsupportedVersion: 4001,
  revoked: 4003,
  replaced: 4004,
  heartbeatTimeout: 4008,
} as const;
