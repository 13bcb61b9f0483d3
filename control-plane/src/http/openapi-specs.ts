import { z } from '@hono/zod-openapi';

/**
 * What the OpenAPI document says of each route: its summary and, for the core resources,
 * the exact body and response schemas (test/openapi.test.ts checks real answers against them).
 * A route missing here is still described, by its method and path, with a JSON object answer.
 */
const Id = z.uuid();
const Time = z.string().describe('ISO 8601 time');
const NullableTime = Time.nullable();
export const Json = z.looseObject({});

export const Problem = z.looseObject({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  instance: z.string().optional(),
});

const Agent = z.looseObject({
  id: Id,
  hostname: z.string(),
  agentVersion: z.string(),
  labels: z.record(z.string(), z.string()),
  status: z.enum(['pending', 'online', 'offline', 'revoked']),
  enrolledAt: Time,
  lastSeenAt: NullableTime,
});
const Target = z.looseObject({
  id: Id,
  agentId: Id,
  engine: z.string(),
  name: z.string(),
  connection: Json,
  storageId: Id,
  options: Json,
});
const Job = z.looseObject({
  id: Id,
  type: z.enum(['backup', 'verify', 'restore', 'drill', 'pitr_restore', 'wal_verify']),
  state: z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled', 'stalled']),
  agentId: Id,
  targetId: Id.nullable(),
  progress: Json,
  result: Json.nullable(),
  error: z.looseObject({ code: z.string(), message: z.string() }).nullable(),
  createdAt: Time,
  startedAt: NullableTime,
  finishedAt: NullableTime,
});
const Backup = z.looseObject({
  id: Id,
  targetId: Id.nullable(),
  agentId: Id,
  storageId: Id,
  objectKey: z.string(),
  filename: z.string(),
  sizeBytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  status: z.string(),
  startedAt: Time,
  finishedAt: Time,
});
const Storage = z.looseObject({
  id: Id,
  name: z.string(),
  kind: z.enum(['s3', 'local']),
  hasCredentials: z.boolean(),
});
const Schedule = z.looseObject({
  id: Id,
  targetId: Id,
  cron: z.string(),
  timezone: z.string(),
  enabled: z.boolean(),
});
const User = z.looseObject({
  id: Id,
  username: z.string(),
  role: z.enum(['admin', 'operator', 'viewer']),
  createdAt: Time,
  disabledAt: NullableTime,
});
const Tokens = z.looseObject({
  accessToken: z.string(),
  tokenType: z.literal('Bearer'),
  expiresIn: z.number().int(),
  refreshToken: z.string(),
  refreshExpiresAt: Time,
  user: z.looseObject({ id: Id, username: z.string(), role: z.string() }),
});
const Rotation = z.looseObject({
  id: Id,
  toKid: z.string(),
  state: z.enum(['running', 'succeeded', 'failed']),
  total: z.number().int(),
  done: z.number().int(),
});
const list = <T extends z.ZodType>(item: T) =>
  z.looseObject({
    items: z.array(item),
    /** Paged lists: the next page's cursor (null on the last), and the total where it is cheap. */
    nextCursor: z.string().nullable().optional(),
    total: z.number().int().optional(),
  });

const BrowserTokens = z.object({
  accessToken: z.string(),
  tokenType: z.literal('Bearer'),
  expiresIn: z.number().int(),
  csrfToken: z.string(),
  user: z.object({ id: z.string(), username: z.string(), role: z.string() }),
});

export type Spec = { summary: string; body?: z.ZodType; response?: z.ZodType; status?: number };
export const SPECS: Record<string, Spec> = {
  'POST /api/v1/agents/enroll': { summary: 'Enrol an agent with a one-time token', status: 201 },
  'POST /api/v1/auth/login': {
    summary: 'Log in: a short-lived access token and a single-use refresh token',
    body: z.object({ username: z.string(), password: z.string() }),
    response: Tokens,
  },
  'POST /api/v1/auth/refresh': {
    summary: 'Trade a refresh token for new tokens (its reuse ends every session)',
    body: z.object({ refreshToken: z.string() }),
    response: Tokens,
  },
  'POST /api/v1/auth/logout': {
    summary: 'End a session',
    body: z.object({ refreshToken: z.string() }),
    status: 204,
  },
  'POST /api/v1/auth/session': {
    summary:
      'Log in a browser: the refresh token goes into an HttpOnly SameSite=Strict cookie, the CSRF token into dbb_csrf',
    body: z.object({ username: z.string(), password: z.string() }),
    response: BrowserTokens,
  },
  'POST /api/v1/auth/session/refresh': {
    summary: 'Renew a browser session from its cookie (X-CSRF-Token required)',
    response: BrowserTokens,
  },
  'POST /api/v1/auth/session/logout': {
    summary: 'End a browser session (X-CSRF-Token required); its refresh cookie stops working',
    status: 204,
  },
  'GET /api/v1/auth/me': { summary: 'Who am I' },
  'GET /api/v1/dashboard/overview': {
    summary:
      'The fleet in numbers: agents, targets by health, the last 24 h, bytes stored, 30 days of backups by day',
  },
  'GET /api/v1/dashboard/targets': {
    summary:
      "Every target's health in one row, with a 30-day strip (g good, f failed, m missed, r running, - none)",
  },
  'GET /api/v1/dashboard/targets/:id': {
    summary:
      "A database's page: its row, health with firing alerts, its 50 newest backups (job, newest verify) and 20 newest restores",
  },
  'GET /api/v1/jobs/:id/events': {
    summary:
      'A job as Server-Sent Events: job (state, progress), log (id = line id; resume with Last-Event-ID), end',
  },
  'GET /api/v1/auth/permissions': { summary: 'The permission table, and what the caller may do' },
  'POST /api/v1/users': { summary: 'Create a user', response: User, status: 201 },
  'GET /api/v1/users': { summary: 'List users', response: list(User) },
  'PATCH /api/v1/users/:id': { summary: 'Change role or password, disable, unlock', response: User },
  'DELETE /api/v1/users/:id': { summary: 'Delete a user', status: 204 },
  'POST /api/v1/tokens': { summary: 'Create an API token (shown once)', status: 201 },
  'GET /api/v1/tokens': { summary: 'List API tokens' },
  'DELETE /api/v1/tokens/:id': { summary: 'Revoke an API token', status: 204 },
  'POST /api/v1/enrollment-tokens': {
    summary: 'Create a one-time enrolment token and its install line',
    status: 201,
    response: z.looseObject({
      id: Id,
      token: z.string(),
      expiresAt: Time,
      installCommand: z.string().nullable(),
    }),
  },
  'GET /api/v1/agents': { summary: 'List agents', response: list(Agent) },
  'GET /api/v1/agents/summary': { summary: 'Agents by status (one query)' },
  'GET /api/v1/targets/summary': {
    summary:
      'Targets: total, overdue (backup_missed firing), failing (newest backup job failed), never backed up',
  },
  'GET /api/v1/agents/:id': { summary: 'An agent, its facts and status history', response: Agent },
  'DELETE /api/v1/agents/:id': { summary: 'Revoke an agent', status: 204 },
  'POST /api/v1/agents/:id/commands': { summary: 'Send a command', status: 202 },
  'GET /api/v1/agents/:id/commands': { summary: "An agent's commands" },
  'GET /api/v1/commands/:id': { summary: 'A command' },
  'GET /api/v1/agents/:id/events': { summary: "An agent's events" },
  'POST /api/v1/storage': {
    summary: 'Create a storage profile (credentials sealed)',
    response: Storage,
    status: 201,
  },
  'GET /api/v1/storage': { summary: 'List storage profiles', response: list(Storage) },
  'GET /api/v1/storage/:id': { summary: 'A storage profile', response: Storage },
  'POST /api/v1/storage/:id/rescan': { summary: 'Rebuild catalogue entries from the bucket' },
  'POST /api/v1/storage/:id/test': {
    summary:
      "Test a storage profile from an agent's host {agentId}: write, read back, delete a 64 KiB object",
    status: 202,
  },
  'DELETE /api/v1/storage/:id': { summary: 'Delete a storage profile', status: 204 },
  'POST /api/v1/agents/:id/targets': {
    summary: 'Add a target (tested through the agent first)',
    response: Target,
    status: 201,
  },
  'GET /api/v1/agents/:id/discovered': { summary: 'Databases the agent found' },
  'POST /api/v1/agents/:id/discovered/:key/adopt': {
    summary: 'Adopt a discovered database as a target',
    status: 201,
  },
  'GET /api/v1/targets': { summary: 'List targets', response: list(Target) },
  'GET /api/v1/agents/:id/targets': { summary: "An agent's targets", response: list(Target) },
  'GET /api/v1/targets/:id': { summary: 'A target', response: Target },
  'PATCH /api/v1/targets/:id': { summary: 'Change a target (tested again)', response: Target },
  'DELETE /api/v1/targets/:id': { summary: 'Delete a target', status: 204 },
  'POST /api/v1/targets/:id/backups': { summary: 'Back up now', response: Job, status: 202 },
  'GET /api/v1/jobs': { summary: 'List jobs', response: list(Job) },
  'GET /api/v1/jobs/:id': { summary: 'A job and its progress', response: Job },
  'GET /api/v1/jobs/:id/logs': {
    summary: "A job's log (poll with after=)",
    response: list(z.looseObject({ id: z.number().int(), at: Time, level: z.string(), message: z.string() })),
  },
  'GET /api/v1/backups': { summary: 'The catalogue', response: list(Backup) },
  'GET /api/v1/backups/:id': { summary: 'A backup', response: Backup },
  'DELETE /api/v1/backups/:id': {
    summary:
      "Delete a backup from storage (409 for the newest good one, or one a kept backup is built on); the agent's command to follow",
    status: 202,
  },
  'POST /api/v1/backups/:id/verify': { summary: 'Verify a backup', response: Job, status: 202 },
  'POST /api/v1/backups/:id/restore': { summary: 'Restore a backup', response: Job, status: 202 },
  'GET /api/v1/keys/kek': { summary: 'The active key-encryption public key' },
  'POST /api/v1/keys/kek/export': { summary: 'Export a key-encryption private key (?kid=)' },
  'POST /api/v1/keys/kek/rotate': {
    summary: 'Rotate the key-encryption key',
    response: Rotation,
    status: 202,
  },
  'GET /api/v1/keys/rotations': { summary: 'Key rotations', response: list(Rotation) },
  'GET /api/v1/keys/rotations/:id': { summary: 'A key rotation and its progress', response: Rotation },
  'POST /api/v1/targets/:id/schedules': { summary: 'Add a schedule', response: Schedule, status: 201 },
  'GET /api/v1/targets/:id/schedules': { summary: "A target's schedules", response: list(Schedule) },
  'GET /api/v1/targets/:id/schedules/:scheduleId': { summary: 'A schedule', response: Schedule },
  'PATCH /api/v1/targets/:id/schedules/:scheduleId': { summary: 'Change a schedule', response: Schedule },
  'DELETE /api/v1/targets/:id/schedules/:scheduleId': { summary: 'Delete a schedule', status: 204 },
  'GET /api/v1/targets/:id/retention': { summary: 'Retention policy' },
  'PUT /api/v1/targets/:id/retention': { summary: 'Set the retention policy' },
  'GET /api/v1/targets/:id/retention/preview': { summary: 'What retention would delete, and why' },
  'POST /api/v1/targets/:id/cleanup': { summary: 'Delete backups older than a time (or dry run)' },
  'GET /api/v1/alerts': { summary: 'Alerts' },
  'GET /api/v1/targets/:id/health': { summary: 'RPO, next expected run and the newest drill' },
  'PUT /api/v1/targets/:id/drill': { summary: "Set the target's restore drill policy" },
  'GET /api/v1/targets/:id/drill': { summary: "The target's restore drill policy" },
  'DELETE /api/v1/targets/:id/drill': { summary: 'Remove the drill policy', status: 204 },
  'POST /api/v1/targets/:id/drills': { summary: 'Drill the newest good backup now', status: 202 },
  'GET /api/v1/targets/:id/recovery-window': {
    summary: 'A physical target: the earliest and latest restorable point per timeline, and any WAL gap',
  },
  'POST /api/v1/targets/:id/verify-chain': {
    summary: 'Check that every archived WAL file is in storage and authenticates; missing ones become gaps',
    status: 202,
  },
  'POST /api/v1/targets/:id/restore': {
    summary:
      'Restore a physical target to a point in time (pointInTime | lsn | latest) into a new data directory',
    status: 202,
  },
  'GET /api/v1/targets/:id/drills': {
    summary: 'Drills of a target, newest first, with RTO and RPO measured',
  },
  'GET /api/v1/reports/recoverability': {
    summary: 'Every target: last good backup, last drill, measured RTO and RPO',
  },
  'GET /api/v1/audit': { summary: 'The audit trail, newest first' },
  'GET /api/v1/audit/export': { summary: 'The audit trail as JSONL or CSV' },
  'GET /api/v1/audit/verify': { summary: "Check the audit trail's hash chain" },
  'POST /api/v1/notifications/channels': { summary: 'Add a notification channel', status: 201 },
  'GET /api/v1/notifications/channels': { summary: 'Notification channels (without secrets)' },
  'GET /api/v1/notifications/channels/:id': { summary: 'A notification channel' },
  'PATCH /api/v1/notifications/channels/:id': { summary: 'Change a notification channel' },
  'DELETE /api/v1/notifications/channels/:id': { summary: 'Delete a notification channel', status: 204 },
  'GET /api/v1/notifications/deliveries': { summary: 'The delivery log' },
  'POST /api/v1/notifications/test': { summary: 'Send a test message now' },
};
