import { randomUUID } from 'node:crypto';
import { CompressAlgo, type RetentionCandidate, RetentionPolicy, selectRetention } from '@dbbackup/proto';
import { Cron } from 'croner';
import { Hono } from 'hono';
import { z } from 'zod';
import type { SecretBox } from '../crypto/secret-box.js';
import { type Db, json } from '../db/database.js';
import type { AlertKind } from '../db/schema.js';
import { bumpAgentConfig } from '../services/agent-config.js';
import { ALERT_KINDS, targetHealth } from '../services/alerts.js';
import { createCommand } from '../services/commands.js';
import { storageRefFor, targetSpecFromRow } from '../services/jobs.js';
import type { NotifyBus } from '../services/notify-bus.js';
import type { AuthEnv } from './auth.js';
import { badRequest, conflict, notFound, ProblemError, parseJson, uuidParam, uuidQuery } from './problem.js';

/** Two enabled schedules of one target firing closer than this clash. */
export const CLASH_WINDOW_MS = 5 * 60_000;
const HORIZON_MS = 8 * 86_400_000;

const Fields = z
  .object({
    cron: z.string().min(1).max(200),
    timezone: z.string().min(1).max(64).default('UTC'),
    enabled: z.boolean().default(true),
    storageId: z.uuid().optional(),
    compression: CompressAlgo.optional(),
    /** Save even though another enabled schedule of the target fires within five minutes of this one. */
    allowClash: z.boolean().default(false),
  })
  .strict();

/** The cron expression and time zone as croner reads them, or a 400 naming what is wrong. */
export function parseSchedule(cron: string, timezone: string): Cron {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    throw badRequest(
      `timezone: ${JSON.stringify(timezone)} is not an IANA time zone (for example Europe/Oslo or UTC)`,
      {
        field: 'timezone',
      },
    );
  }
  let c: Cron;
  try {
    c = new Cron(cron, { timezone, paused: true });
  } catch (err) {
    throw badRequest(`cron: ${(err as Error).message}`, { field: 'cron' });
  }
  if (!c.nextRun()) throw badRequest(`cron: ${JSON.stringify(cron)} never fires`, { field: 'cron' });
  return c;
}

/** The first time `a` and `b` fire within the clash window of each other, if they do in the next eight days. */
export function firstClash(a: Cron, b: Cron, now = new Date()): { a: Date; b: Date } | undefined {
  const horizon = now.getTime() + HORIZON_MS;
  for (const [x, y, swap] of [
    [a, b, false],
    [b, a, true],
  ] as const) {
    for (const t of x.nextRuns(500, now)) {
      if (t.getTime() > horizon) break;
      const near = y.nextRun(new Date(t.getTime() - CLASH_WINDOW_MS));
      if (near && Math.abs(near.getTime() - t.getTime()) < CLASH_WINDOW_MS)
        return swap ? { a: near, b: t } : { a: t, b: near };
    }
  }
  return undefined;
}

type ScheduleRow = {
  id: string;
  target_id: string;
  cron: string;
  timezone: string;
  enabled: boolean;
  options: { storageId?: string; compression?: string };
  created_at: Date;
  updated_at: Date;
};

const view = (r: ScheduleRow) => {
  let nextRun: string | null = null;
  try {
    nextRun = r.enabled
      ? (new Cron(r.cron, { timezone: r.timezone, paused: true }).nextRun()?.toISOString() ?? null)
      : null;
  } catch {
    nextRun = null;
  }
  return {
    id: r.id,
    targetId: r.target_id,
    cron: r.cron,
    timezone: r.timezone,
    enabled: r.enabled,
    storageId: r.options.storageId ?? null,
    compression: r.options.compression ?? null,
    nextRun,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
};

export function scheduleRoutes(d: { db: Db; bus: NotifyBus; box: SecretBox }) {
  const { db, bus } = d;
  const api = new Hono<AuthEnv>();

  async function target(id: string) {
    const t = await db
      .selectFrom('targets')
      .select(['id', 'agent_id'])
      .where('id', '=', id)
      .executeTakeFirst();
    if (!t) throw notFound('target');
    return t;
  }

  async function checkStorage(storageId: string | undefined) {
    if (!storageId) return;
    const s = await db
      .selectFrom('storage_profiles')
      .select('id')
      .where('id', '=', storageId)
      .executeTakeFirst();
    if (!s)
      throw new ProblemError(422, 'Unprocessable Content', 'storageId names no storage profile', {
        type: 'validation',
      });
  }

  /** Refuse a schedule that fires within minutes of another enabled one of the same target. */
  async function checkClash(targetId: string, self: string | null, cron: Cron, allow: boolean) {
    if (allow) return;
    const others = await db
      .selectFrom('schedules')
      .selectAll()
      .where('target_id', '=', targetId)
      .where('enabled', '=', true)
      .execute();
    for (const o of others) {
      if (o.id === self) continue;
      const clash = firstClash(cron, new Cron(o.cron, { timezone: o.timezone, paused: true }));
      if (clash)
        throw conflict(
          `this schedule fires at ${clash.a.toISOString()}, within ${CLASH_WINDOW_MS / 60_000} minutes of schedule ${o.id} (${o.cron}, ${o.timezone}) at ${clash.b.toISOString()}; one backup of a target runs at a time, so one of them would be skipped. Change one, or send allowClash: true`,
          'schedule-clash',
        );
    }
  }

  api.post('/targets/:id/schedules', async (c) => {
    const t = await target(uuidParam(c, 'id', 'target'));
    const body = await parseJson(c, Fields);
    const cron = parseSchedule(body.cron, body.timezone);
    await checkStorage(body.storageId);
    if (body.enabled) await checkClash(t.id, null, cron, body.allowClash);
    const id = randomUUID();
    await db
      .insertInto('schedules')
      .values({
        id,
        target_id: t.id,
        cron: body.cron,
        timezone: body.timezone,
        enabled: body.enabled,
        options: json({
          ...(body.storageId ? { storageId: body.storageId } : {}),
          ...(body.compression ? { compression: body.compression } : {}),
        }),
      })
      .execute();
    await bumpAgentConfig(db, bus, t.agent_id, c.get('principal').tokenId);
    const row = await db.selectFrom('schedules').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    return c.json(view(row as ScheduleRow), 201);
  });

  api.get('/targets/:id/schedules', async (c) => {
    const t = await target(uuidParam(c, 'id', 'target'));
    const rows = await db
      .selectFrom('schedules')
      .selectAll()
      .where('target_id', '=', t.id)
      .orderBy('created_at')
      .execute();
    return c.json({ items: rows.map((r) => view(r as ScheduleRow)) });
  });

  async function schedule(targetId: string, id: string) {
    const row = await db
      .selectFrom('schedules')
      .selectAll()
      .where('id', '=', id)
      .where('target_id', '=', targetId)
      .executeTakeFirst();
    if (!row) throw notFound('schedule');
    return row as ScheduleRow;
  }

  api.get('/targets/:id/schedules/:scheduleId', async (c) => {
    const t = await target(uuidParam(c, 'id', 'target'));
    return c.json(view(await schedule(t.id, uuidParam(c, 'scheduleId', 'schedule'))));
  });

  api.patch('/targets/:id/schedules/:scheduleId', async (c) => {
    const t = await target(uuidParam(c, 'id', 'target'));
    const row = await schedule(t.id, uuidParam(c, 'scheduleId', 'schedule'));
    const patch = await parseJson(c, Fields.partial().extend({ allowClash: z.boolean().default(false) }));
    const merged = {
      cron: patch.cron ?? row.cron,
      timezone: patch.timezone ?? row.timezone,
      enabled: patch.enabled ?? row.enabled,
      storageId: patch.storageId ?? row.options.storageId,
      compression: patch.compression ?? row.options.compression,
    };
    const cron = parseSchedule(merged.cron, merged.timezone);
    await checkStorage(merged.storageId);
    if (merged.enabled) await checkClash(t.id, row.id, cron, patch.allowClash);
    await db
      .updateTable('schedules')
      .set({
        cron: merged.cron,
        timezone: merged.timezone,
        enabled: merged.enabled,
        options: json({
          ...(merged.storageId ? { storageId: merged.storageId } : {}),
          ...(merged.compression ? { compression: merged.compression } : {}),
        }),
        updated_at: new Date(),
      })
      .where('id', '=', row.id)
      .execute();
    await bumpAgentConfig(db, bus, t.agent_id, c.get('principal').tokenId);
    return c.json(view(await schedule(t.id, row.id)));
  });

  api.delete('/targets/:id/schedules/:scheduleId', async (c) => {
    const t = await target(uuidParam(c, 'id', 'target'));
    const row = await schedule(t.id, uuidParam(c, 'scheduleId', 'schedule'));
    await db.deleteFrom('schedules').where('id', '=', row.id).execute();
    await bumpAgentConfig(db, bus, t.agent_id, c.get('principal').tokenId);
    return c.body(null, 204);
  });

  // --- retention --------------------------------------------------------------------------------
  async function targetRow(id: string) {
    const t = await db.selectFrom('targets').selectAll().where('id', '=', id).executeTakeFirst();
    if (!t) throw notFound('target');
    return t;
  }

  api.get('/targets/:id/retention', async (c) => {
    const t = await targetRow(uuidParam(c, 'id', 'target'));
    return c.json({ policy: (t.options as { retention?: RetentionPolicy }).retention ?? {} });
  });

  /** Set the policy; the agent gets it with its configuration and applies it after each good backup and daily. */
  api.put('/targets/:id/retention', async (c) => {
    const t = await targetRow(uuidParam(c, 'id', 'target'));
    const body = await parseJson(c, z.object({ policy: RetentionPolicy }).strict());
    const options = { ...(t.options as Record<string, unknown>), retention: body.policy };
    await db
      .updateTable('targets')
      .set({ options: json(options), updated_at: new Date() })
      .where('id', '=', t.id)
      .execute();
    await bumpAgentConfig(db, bus, t.agent_id, c.get('principal').tokenId);
    return c.json({ policy: body.policy });
  });

  /** The catalogue's view: good = committed and not failed by a verify. */
  async function candidates(targetId: string): Promise<RetentionCandidate[]> {
    const rows = await db
      .selectFrom('backups')
      .select(['id', 'started_at', 'status'])
      .where('target_id', '=', targetId)
      .where('deleted_at', 'is', null)
      .execute();
    const failedVerify = new Set(
      (
        await db
          .selectFrom('jobs')
          .select('backup_id')
          .where('type', '=', 'verify')
          .where('state', '=', 'failed')
          .where('target_id', '=', targetId)
          .execute()
      ).map((j) => j.backup_id),
    );
    return rows.map((r) => ({
      id: r.id,
      startedAt: new Date(r.started_at).toISOString(),
      good: r.status === 'completed' && !failedVerify.has(r.id),
    }));
  }

  api.get('/targets/:id/retention/preview', async (c) => {
    const t = await targetRow(uuidParam(c, 'id', 'target'));
    const policy = (t.options as { retention?: RetentionPolicy }).retention ?? {};
    return c.json({ policy, ...selectRetention(await candidates(t.id), policy, new Date()) });
  });

  /**
   * `cleanup --older-than 30d [--dry-run]`: backups older than the age go, except the
   * newest good one. A dry run answers from the catalogue; otherwise the agent applies it
   * to what the storage holds (202 with the command to follow).
   */
  api.post('/targets/:id/cleanup', async (c) => {
    const t = await targetRow(uuidParam(c, 'id', 'target'));
    const body = await parseJson(
      c,
      z
        .object({
          olderThan: z.string().regex(/^\d{1,5}[dw]$/, 'a number of days or weeks, like 30d or 4w'),
          dryRun: z.boolean().default(false),
          storageId: z.uuid().optional(),
        })
        .strict(),
    );
    const n = Number(body.olderThan.slice(0, -1));
    const days = body.olderThan.endsWith('w') ? n * 7 : n;
    if (days < 1) throw badRequest('olderThan: must be at least 1 day', { field: 'olderThan' });
    const policy: RetentionPolicy = { keepDays: days };
    const decision = selectRetention(await candidates(t.id), policy, new Date());
    if (body.dryRun) return c.json({ dryRun: true, olderThan: body.olderThan, ...decision });
    const agent = await db
      .selectFrom('agents')
      .select(['hostname', 'labels'])
      .where('id', '=', t.agent_id)
      .executeTakeFirstOrThrow();
    const target = targetSpecFromRow(t);
    await checkStorage(body.storageId);
    const storage = await storageRefFor(db, d.box, body.storageId ?? t.storage_id);
    const commandId = await createCommand(db, {
      agentId: t.agent_id,
      command: {
        kind: 'retention.apply',
        target,
        storage,
        naming: { env: (agent.labels as Record<string, string>).env ?? 'default', agentName: agent.hostname },
        policy,
      },
      ttlSeconds: 86_400,
      createdBy: c.get('principal').tokenId,
    });
    await bus.publish({ kind: 'commands', agentId: t.agent_id });
    return c.json({ dryRun: false, olderThan: body.olderThan, commandId, expected: decision }, 202);
  });

  // --- alerts and health ------------------------------------------------------------------------
  api.get('/alerts', async (c) => {
    let q = db.selectFrom('alerts').selectAll().orderBy('fired_at', 'desc').limit(500);
    const state = c.req.query('state');
    if (state === 'firing' || state === 'resolved') q = q.where('state', '=', state);
    else if (state) throw badRequest('state: firing or resolved', { field: 'state' });
    const kind = c.req.query('kind');
    if (kind && (ALERT_KINDS as readonly string[]).includes(kind))
      q = q.where('kind', '=', kind as AlertKind);
    else if (kind) throw badRequest(`kind: one of ${ALERT_KINDS.join(', ')}`, { field: 'kind' });
    const target = uuidQuery(c, 'target');
    if (target) q = q.where('target_id', '=', target);
    const rows = await q.execute();
    return c.json({
      items: rows.map((r) => ({
        id: r.id,
        kind: r.kind,
        state: r.state,
        subject: r.subject,
        targetId: r.target_id,
        jobId: r.job_id,
        message: r.message,
        details: r.details,
        firedAt: r.fired_at,
        resolvedAt: r.resolved_at,
      })),
    });
  });

  /** RPO (time since the last good backup) and the next expected run. */
  api.get('/targets/:id/health', async (c) => {
    const t = await targetRow(uuidParam(c, 'id', 'target'));
    const firing = await db
      .selectFrom('alerts')
      .select(['kind', 'message', 'fired_at'])
      .where('target_id', '=', t.id)
      .where('state', '=', 'firing')
      .execute();
    return c.json({ ...(await targetHealth(db, t.id)), firingAlerts: firing });
  });

  return api;
}
