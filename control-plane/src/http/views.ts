import type { Selectable } from 'kysely';
import type {
  AgentsTable,
  BackupsTable,
  CommandsTable,
  JobsTable,
  StorageProfilesTable,
  TargetsTable,
} from '../db/schema.js';
import { redactKeys } from '../services/redaction.js';

/**
 * Database rows as the API shows them: camelCase, typed from the schema, and without
 * what no API view shows (sealed credentials, wrapped data keys).
 */

export function agentView(r: Selectable<AgentsTable>) {
  return {
    id: r.id,
    hostname: r.hostname,
    agentVersion: r.agent_version,
    labels: r.labels,
    status: r.status,
    enrolledAt: r.enrolled_at,
    lastSeenAt: r.last_seen_at,
    connectedAt: r.connected_at,
    revokedAt: r.revoked_at,
    lastEventSeq: r.last_event_seq,
    facts: r.facts,
  };
}

export function commandView(row: Selectable<CommandsTable>) {
  return {
    id: row.id,
    agentId: row.agent_id,
    kind: row.kind,
    // No API view shows a wrapped or re-wrapped key (restore, verify and meta.rewrite carry one).
    payload: redactKeys(row.payload),
    state: row.state,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    expiresAt: row.expires_at,
    deliveredAt: row.delivered_at,
    acknowledgedAt: row.acknowledged_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    deliveries: row.deliveries,
    result: redactKeys(row.result),
    error: row.error,
  };
}

export function storageView(r: Selectable<StorageProfilesTable>) {
  return {
    id: r.id,
    name: r.name,
    kind: r.kind,
    ...r.config,
    hasCredentials: r.secret_enc !== null,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function targetView(r: Selectable<TargetsTable>) {
  return {
    id: r.id,
    agentId: r.agent_id,
    engine: r.engine,
    name: r.name,
    connection: r.connection,
    secretRef: r.secret_ref,
    options: r.options,
    storageId: r.storage_id,
    serverVersion: r.server_version,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function jobView(r: Selectable<JobsTable>) {
  return {
    id: r.id,
    type: r.type,
    state: r.state,
    agentId: r.agent_id,
    targetId: r.target_id,
    backupId: r.backup_id,
    commandId: r.command_id,
    origin: r.origin,
    scheduleId: r.schedule_id,
    runWhileDisconnected: r.run_while_disconnected,
    params: r.params,
    progress: r.progress,
    result: r.result,
    error: r.error,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  };
}

export function backupView(r: Selectable<BackupsTable>) {
  const { wrappedKey: _hidden, ...meta } = r.meta as Record<string, unknown>;
  return {
    id: r.id,
    targetId: r.target_id,
    agentId: r.agent_id,
    storageId: r.storage_id,
    objectKey: r.object_key,
    filename: r.filename,
    sizeBytes: r.size_bytes,
    sha256: r.sha256,
    status: r.status,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    scheduleId: r.schedule_id ?? null,
    runWhileDisconnected: r.run_while_disconnected ?? false,
    deletedAt: r.deleted_at ?? null,
    deletedReason: r.deleted_reason ?? null,
    meta,
  };
}
