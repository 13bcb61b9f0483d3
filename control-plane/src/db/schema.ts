import type { ColumnType, Generated } from 'kysely';

type Timestamp = ColumnType<Date, Date | string, Date | string>;
type GeneratedTimestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
type Json<T = unknown> = ColumnType<T, string, string>;
type NullableJson<T = unknown> = ColumnType<T | null, string | null | undefined, string | null>;

export type Role = 'admin' | 'operator' | 'viewer';
export type AgentStatus = 'pending' | 'online' | 'offline' | 'revoked';
export type CommandState =
  | 'queued'
  | 'delivered'
  | 'acknowledged'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'cancelled'
  | 'expired';

export interface SettingsTable {
  key: string;
  value: Json;
}

export interface ApiTokensTable {
  id: string;
  name: string;
  role: Role;
  token_hash: string;
  created_at: GeneratedTimestamp;
  last_used_at: NullableTimestamp;
  revoked_at: NullableTimestamp;
  expires_at: NullableTimestamp;
}

export interface EnrollmentTokensTable {
  id: string;
  token_hash: string;
  labels: Json<Record<string, string>>;
  created_by: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: GeneratedTimestamp;
  expires_at: Timestamp;
  used_at: NullableTimestamp;
  agent_id: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface AgentsTable {
  id: string;
  hostname: string;
  agent_version: string;
  labels: Json<Record<string, string>>;
  signing_jwk: Json<Record<string, string>>;
  encryption_jwk: NullableJson<Record<string, string>>;
  status: AgentStatus;
  enrolled_at: GeneratedTimestamp;
  last_seen_at: NullableTimestamp;
  connected_at: NullableTimestamp;
  facts: NullableJson<Record<string, unknown>>;
  revoked_at: NullableTimestamp;
  last_event_seq: Generated<number>;
  config_version: Generated<number>;
}

export interface AgentStatusHistoryTable {
  id: Generated<number>;
  agent_id: string;
  status: AgentStatus;
  reason: string;
  at: GeneratedTimestamp;
}

export interface AgentTokenJtisTable {
  jti: string;
  agent_id: string;
  expires_at: Timestamp;
}

export interface CommandsTable {
  id: string;
  agent_id: string;
  kind: string;
  payload: Json<Record<string, unknown>>;
  state: CommandState;
  created_by: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: GeneratedTimestamp;
  updated_at: GeneratedTimestamp;
  expires_at: Timestamp;
  delivered_at: NullableTimestamp;
  acknowledged_at: NullableTimestamp;
  started_at: NullableTimestamp;
  finished_at: NullableTimestamp;
  deliveries: Generated<number>;
  result: NullableJson;
  error: NullableJson<{ code: string; message: string }>;
}

export interface AgentEventsTable {
  agent_id: string;
  seq: number;
  type: string;
  body: Json;
  received_at: GeneratedTimestamp;
  rejected_reason: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface KeysTable {
  kid: string;
  purpose: 'kek';
  public_jwk: Json<Record<string, string>>;
  private_enc: ColumnType<string | null, string | null | undefined, string | null>;
  active: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: GeneratedTimestamp;
  retired_at: NullableTimestamp;
  deactivated_at: NullableTimestamp;
}

export interface KeyRotationsTable {
  id: string;
  to_kid: string;
  state: 'running' | 'succeeded' | 'failed';
  total: ColumnType<number, number | undefined, number>;
  done: ColumnType<number, number | undefined, number>;
  last_error: ColumnType<string | null, string | null | undefined, string | null>;
  created_by: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: GeneratedTimestamp;
  finished_at: NullableTimestamp;
}

export interface StorageProfilesTable {
  id: string;
  name: string;
  kind: 's3' | 'local';
  config: Json<Record<string, unknown>>;
  secret_enc: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: GeneratedTimestamp;
  updated_at: GeneratedTimestamp;
}

export interface TargetsTable {
  id: string;
  agent_id: string;
  engine: string;
  name: string;
  connection: Json<Record<string, unknown>>;
  secret_ref: Json<Record<string, unknown>>;
  options: Json<Record<string, unknown>>;
  storage_id: string;
  server_version: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: GeneratedTimestamp;
  updated_at: GeneratedTimestamp;
}

export interface BackupsTable {
  id: string;
  target_id: ColumnType<string | null, string | null | undefined, string | null>;
  agent_id: string;
  storage_id: string;
  object_key: string;
  meta_key: string;
  filename: string;
  size_bytes: number;
  sha256: string;
  status: string;
  started_at: Timestamp;
  finished_at: Timestamp;
  meta: Json<Record<string, unknown>>;
  schedule_id: ColumnType<string | null, string | null | undefined, string | null>;
  run_while_disconnected: ColumnType<boolean, boolean | undefined, boolean>;
  deleted_at: NullableTimestamp;
  deleted_reason: ColumnType<string | null, string | null | undefined, string | null>;
  key_bound: ColumnType<boolean, boolean | undefined, boolean>;
  meta_kid: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: GeneratedTimestamp;
}

export type AlertKind =
  | 'backup_missed'
  | 'job_stalled'
  | 'agent_event_rejected'
  | 'key_unavailable'
  | 'drill_failed'
  | 'rto_exceeded'
  | 'rpo_exceeded'
  | 'wal_gap'
  | 'wal_archive_lag';

export interface WalFilesTable {
  target_id: string;
  name: string;
  timeline: number;
  /** The segment number (null for a timeline history file). */
  segno: number | null;
  agent_id: string;
  storage_id: string;
  object_key: string;
  size_bytes: number;
  sha256: string;
  wrapped_key: string;
  kek_id: string;
  segment_bytes: number;
  system_identifier: string;
  completed_at: Timestamp;
  archived_at: Timestamp;
  deleted_at: NullableTimestamp;
}

export interface WalStatusTable {
  target_id: string;
  agent_id: string;
  receiving: boolean;
  spool_files: number;
  spool_bytes: number;
  spool_limit_bytes: number;
  slot_retained_bytes: number | null;
  last_archived: string | null;
  error: string | null;
  reported_at: Timestamp;
}

export interface AlertsTable {
  id: string;
  kind: AlertKind;
  state: 'firing' | 'resolved';
  target_id: ColumnType<string | null, string | null | undefined, string | null>;
  job_id: ColumnType<string | null, string | null | undefined, string | null>;
  subject: string;
  message: string;
  details: Json<Record<string, unknown>>;
  fired_at: GeneratedTimestamp;
  resolved_at: NullableTimestamp;
}

export interface SchedulesTable {
  id: string;
  target_id: string;
  cron: string;
  timezone: string;
  enabled: boolean;
  options: Json<{ storageId?: string; compression?: 'zstd' | 'gzip' | 'none' }>;
  created_at: GeneratedTimestamp;
  updated_at: GeneratedTimestamp;
  /**
   * The missed-backup sweep's note of when this schedule next expects a backup (never later
   * than the truth: computed from a last good backup that can only have moved forward since);
   * null when not yet computed, infinity when the schedule never fires again.
   */
  next_expected_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'stalled';

export interface JobsTable {
  id: string;
  type: 'backup' | 'verify' | 'restore' | 'drill' | 'pitr_restore' | 'wal_verify';
  state: JobState;
  agent_id: string;
  target_id: ColumnType<string | null, string | null | undefined, string | null>;
  backup_id: ColumnType<string | null, string | null | undefined, string | null>;
  command_id: ColumnType<string | null, string | null | undefined, string | null>;
  origin: ColumnType<'api' | 'schedule', 'api' | 'schedule' | undefined, 'api' | 'schedule'>;
  schedule_id: ColumnType<string | null, string | null | undefined, string | null>;
  run_while_disconnected: ColumnType<boolean, boolean | undefined, boolean>;
  /** The storage the job writes to (backup) or reads from (restore, verify). */
  storage_id: ColumnType<string | null, string | null | undefined, string | null>;
  params: ColumnType<Record<string, unknown>, string | undefined, string>;
  progress: ColumnType<Record<string, unknown>, string | undefined, string>;
  result: NullableJson;
  error: NullableJson<{ code: string; message: string }>;
  created_by: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: GeneratedTimestamp;
  started_at: NullableTimestamp;
  finished_at: NullableTimestamp;
}

export interface JobLogsTable {
  id: Generated<number>;
  job_id: string;
  at: GeneratedTimestamp;
  level: string;
  message: string;
}

export type AuditOutcome = 'success' | 'failure' | 'denied';

export interface AuditLogTable {
  id: ColumnType<string, string, never>;
  at: Timestamp;
  actor: string;
  actor_id: string | null;
  source_ip: string | null;
  action: string;
  target: string | null;
  outcome: AuditOutcome;
  status: number | null;
  detail: Json<Record<string, unknown>>;
  prev_hash: string;
  hash: string;
}

export interface UsersTable {
  id: string;
  username: string;
  password_hash: string;
  role: Role;
  created_at: GeneratedTimestamp;
  disabled_at: NullableTimestamp;
  failed_logins: ColumnType<number, number | undefined, number>;
  locked_until: NullableTimestamp;
  last_login_at: NullableTimestamp;
}

export interface RefreshTokensTable {
  id: string;
  user_id: string;
  token_hash: string;
  created_at: GeneratedTimestamp;
  expires_at: Timestamp;
  used_at: NullableTimestamp;
  revoked_at: NullableTimestamp;
}

export interface NotificationChannelsTable {
  id: string;
  name: string;
  kind: 'webhook' | 'slack' | 'email';
  sealed_config: string;
  events: Json<string[]>;
  enabled: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: GeneratedTimestamp;
  updated_at: GeneratedTimestamp;
}

export interface NotificationDeliveriesTable {
  id: string;
  channel_id: string;
  event: string;
  payload: Json<Record<string, unknown>>;
  state: 'pending' | 'delivered' | 'failed';
  attempts: ColumnType<number, number | undefined, number>;
  last_error: ColumnType<string | null, string | null | undefined, string | null>;
  next_attempt_at: GeneratedTimestamp;
  created_at: GeneratedTimestamp;
  delivered_at: NullableTimestamp;
}

export interface DrillPoliciesTable {
  target_id: string;
  cron: ColumnType<string | null, string | null | undefined, string | null>;
  timezone: ColumnType<string, string | undefined, string>;
  every_n_backups: ColumnType<number | null, number | null | undefined, number | null>;
  enabled: ColumnType<boolean, boolean | undefined, boolean>;
  max_restore_seconds: ColumnType<number | null, number | null | undefined, number | null>;
  max_data_age_seconds: ColumnType<number | null, number | null | undefined, number | null>;
  last_started_at: NullableTimestamp;
  created_at: GeneratedTimestamp;
  updated_at: GeneratedTimestamp;
}

export interface Database {
  drill_policies: DrillPoliciesTable;
  key_rotations: KeyRotationsTable;
  notification_channels: NotificationChannelsTable;
  notification_deliveries: NotificationDeliveriesTable;
  users: UsersTable;
  refresh_tokens: RefreshTokensTable;
  audit_log: AuditLogTable;
  keys: KeysTable;
  storage_profiles: StorageProfilesTable;
  targets: TargetsTable;
  backups: BackupsTable;
  schedules: SchedulesTable;
  alerts: AlertsTable;
  jobs: JobsTable;
  job_logs: JobLogsTable;
  settings: SettingsTable;
  api_tokens: ApiTokensTable;
  enrollment_tokens: EnrollmentTokensTable;
  agents: AgentsTable;
  agent_status_history: AgentStatusHistoryTable;
  agent_token_jtis: AgentTokenJtisTable;
  commands: CommandsTable;
  agent_events: AgentEventsTable;
  wal_files: WalFilesTable;
  wal_status: WalStatusTable;
}
