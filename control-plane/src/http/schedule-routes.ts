import { randomUUID } from 'node:crypto';
import { CompressAlgo } from '@dbbackup/proto';
import { Cron } from 'croner';
import { Hono } from 'hono';
import type { Selectable } from 'kysely';
import { z } from 'zod';
import { type Db, json } from '../db/database.js';
import type { SchedulesTable } from '../db/schema.js';
import { conflict, notFound } from '../problem.js';
import { bumpAgentConfig } from '../services/agent-config.js';
import { CLASH_WINDOW_MS, firstClash, nextRunOf, parseSchedule } from '../services/schedule-times.js';
import { checkStorage } from '../services/storage-specs.js';
import type { AuthEnv } from './auth.js';
import { parseJson, uuidParam } from './input.js';
import type { Ctx, RouteDeps } from './route-deps.js';

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
const Patch = Fields.partial().extend({ allowClash: z.boolean().default(false) });

function scheduleView(r: Selectable<SchedulesTable>) {
  return {
    id: r.id,
    targetId: r.target_id,
    cron: r.cron,
    timezone: r.timezone,
    enabled: r.enabled,
    storageId: r.options.storageId ?? null,
    compression: r.options.compression ?? null,
    nextRun: nextRunOf(r),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Schedules: when the agent backs a target up on its own clock (it runs them while the control plane is away). */
export function scheduleRoutes(d: RouteDeps) {
  const { db } = d;
  const api = new Hono<AuthEnv>();
  api.post('/targets/:id/schedules', (c) => createSchedule(c, d));
  api.get('/targets/:id/schedules', async (c) => {
    const t = await target(db, uuidParam(c, 'id', 'target'));
    const rows = await db
      .selectFrom('schedules')
      .selectAll()
      .where('target_id', '=', t.id)
      .orderBy('created_at')
      .execute();
    return c.json({ items: rows.map(scheduleView) });
  });
  api.get('/targets/:id/schedules/:scheduleId', async (c) => {
    const t = await target(db, uuidParam(c, 'id', 'target'));
    return c.json(scheduleView(await schedule(db, t.id, uuidParam(c, 'scheduleId', 'schedule'))));
  });
  api.patch('/targets/:id/schedules/:scheduleId', (c) => patchSchedule(c, d));
  api.delete('/targets/:id/schedules/:scheduleId', async (c) => {
    const t = await target(db, uuidParam(c, 'id', 'target'));
    const row = await schedule(db, t.id, uuidParam(c, 'scheduleId', 'schedule'));
    await db.deleteFrom('schedules').where('id', '=', row.id).execute();
    await bumpAgentConfig(db, d.bus, t.agent_id, c.get('principal').tokenId);
    return c.body(null, 204);
  });
  return api;
}

async function target(db: Db, id: string) {
  const t = await db.selectFrom('targets').select(['id', 'agent_id']).where('id', '=', id).executeTakeFirst();
  if (!t) throw notFound('target');
  return t;
}

async function schedule(db: Db, targetId: string, id: string) {
  const row = await db
    .selectFrom('schedules')
    .selectAll()
    .where('id', '=', id)
    .where('target_id', '=', targetId)
    .executeTakeFirst();
  if (!row) throw notFound('schedule');
  return row;
}

/** Refuse a schedule that fires within minutes of another enabled one of the same target. */
async function checkClash(db: Db, targetId: string, self: string | null, cron: Cron, allow: boolean) {
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

function scheduleOptions(o: { storageId?: string | undefined; compression?: string | undefined }) {
  return json({
    ...(o.storageId ? { storageId: o.storageId } : {}),
    ...(o.compression ? { compression: o.compression } : {}),
  });
}

async function createSchedule(c: Ctx, { db, bus }: RouteDeps) {
  const t = await target(db, uuidParam(c, 'id', 'target'));
  const body = await parseJson(c, Fields);
  const cron = parseSchedule(body.cron, body.timezone);
  await checkStorage(db, body.storageId);
  if (body.enabled) await checkClash(db, t.id, null, cron, body.allowClash);
  const row = await db
    .insertInto('schedules')
    .values({
      id: randomUUID(),
      target_id: t.id,
      cron: body.cron,
      timezone: body.timezone,
      enabled: body.enabled,
      options: scheduleOptions(body),
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  await bumpAgentConfig(db, bus, t.agent_id, c.get('principal').tokenId);
  return c.json(scheduleView(row), 201);
}

async function patchSchedule(c: Ctx, { db, bus }: RouteDeps) {
  const t = await target(db, uuidParam(c, 'id', 'target'));
  const row = await schedule(db, t.id, uuidParam(c, 'scheduleId', 'schedule'));
  const patch = await parseJson(c, Patch);
  const merged = {
    cron: patch.cron ?? row.cron,
    timezone: patch.timezone ?? row.timezone,
    enabled: patch.enabled ?? row.enabled,
    storageId: patch.storageId ?? row.options.storageId,
    compression: patch.compression ?? row.options.compression,
  };
  const cron = parseSchedule(merged.cron, merged.timezone);
  await checkStorage(db, merged.storageId);
  if (merged.enabled) await checkClash(db, t.id, row.id, cron, patch.allowClash);
  const updated = await db
    .updateTable('schedules')
    .set({
      cron: merged.cron,
      timezone: merged.timezone,
      enabled: merged.enabled,
      options: scheduleOptions(merged),
      updated_at: new Date(),
      // The missed-backup sweep computes it again from the new timing.
      next_expected_at: null,
    })
    .where('id', '=', row.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  await bumpAgentConfig(db, bus, t.agent_id, c.get('principal').tokenId);
  return c.json(scheduleView(updated));
}
