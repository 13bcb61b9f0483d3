import { Hono } from 'hono';
import type { Selectable } from 'kysely';
import { z } from 'zod';
import type { Db } from '../db/database.js';
import type { DrillPoliciesTable } from '../db/schema.js';
import { notFound } from '../problem.js';
import { startDrill } from '../services/drills.js';
import { recoverabilityReport } from '../services/recoverability.js';
import { nextRunOf, parseSchedule } from '../services/schedule-times.js';
import type { AuthEnv } from './auth.js';
import { parseJson, uuidParam } from './input.js';
import type { Ctx, RouteDeps } from './route-deps.js';
import { jobView } from './views.js';

const Seconds = z
  .number()
  .positive()
  .max(30 * 86_400);
const DrillPolicyBody = z
  .object({
    /** When to drill (croner syntax, in `timezone`); absent: only after every Nth backup, or on demand. */
    cron: z.string().min(1).max(200).optional(),
    timezone: z.string().min(1).max(64).default('UTC'),
    everyNBackups: z.number().int().min(1).max(10_000).optional(),
    enabled: z.boolean().default(true),
    /** The recovery time objective: a drill's restore slower than this raises rto_exceeded. */
    maxRestoreSeconds: Seconds.optional(),
    /** The recovery point objective: a drilled backup older than this raises rpo_exceeded. */
    maxDataAgeSeconds: Seconds.optional(),
    /**
     * Where the drill restores: `auto`, the only choice so far: a new database with a generated
     * name on the target's server (PostgreSQL, MariaDB), a throwaway redis-server on a random
     * 127.0.0.1 port (Redis), a file or directory under the agent's state directory (SQLite, files).
     */
    scratch: z.enum(['auto']).default('auto'),
  })
  .strict();

function policyView(p: Selectable<DrillPoliciesTable>) {
  return {
    targetId: p.target_id,
    cron: p.cron,
    timezone: p.timezone,
    everyNBackups: p.every_n_backups,
    enabled: p.enabled,
    maxRestoreSeconds: p.max_restore_seconds,
    maxDataAgeSeconds: p.max_data_age_seconds,
    scratch: 'auto',
    nextRun: p.cron ? nextRunOf({ cron: p.cron, timezone: p.timezone, enabled: p.enabled }) : null,
    lastStartedAt: p.last_started_at,
    createdAt: p.created_at,
    updatedAt: p.updated_at,
  };
}

/** Restore drills: a target's drill policy, drills on demand, their results, and the recoverability report. */
export function drillRoutes(d: RouteDeps) {
  const { db } = d;
  const api = new Hono<AuthEnv>();
  api.put('/targets/:id/drill', (c) => putPolicy(c, d));
  api.get('/targets/:id/drill', async (c) => {
    const id = uuidParam(c, 'id', 'target');
    const p = await db
      .selectFrom('drill_policies')
      .selectAll()
      .where('target_id', '=', id)
      .executeTakeFirst();
    if (!p) throw notFound('drill policy');
    return c.json(policyView(p));
  });
  api.delete('/targets/:id/drill', async (c) => {
    const id = uuidParam(c, 'id', 'target');
    const r = await db.deleteFrom('drill_policies').where('target_id', '=', id).executeTakeFirst();
    if (Number(r.numDeletedRows) === 0) throw notFound('drill policy');
    return c.body(null, 204);
  });
  api.post('/targets/:id/drills', async (c) => {
    const id = await targetId(db, uuidParam(c, 'id', 'target'));
    const job = await startDrill(db, d.box, id, c.get('principal').tokenId, d.commandTtlSeconds);
    await d.bus.publish({ kind: 'commands', agentId: job.agent_id });
    return c.json(jobView(job), 202, { location: `/api/v1/jobs/${job.id}` });
  });
  api.get('/reports/recoverability', async (c) => c.json({ items: await recoverabilityReport(db) }));
  api.get('/targets/:id/drills', async (c) => {
    const id = await targetId(db, uuidParam(c, 'id', 'target'));
    const rows = await db
      .selectFrom('jobs')
      .selectAll()
      .where('target_id', '=', id)
      .where('type', '=', 'drill')
      .orderBy('created_at', 'desc')
      .limit(100)
      .execute();
    return c.json({ items: rows.map(jobView) });
  });
  return api;
}

async function targetId(db: Db, id: string) {
  const t = await db.selectFrom('targets').select('id').where('id', '=', id).executeTakeFirst();
  if (!t) throw notFound('target');
  return t.id;
}

async function putPolicy(c: Ctx, { db }: RouteDeps) {
  const id = await targetId(db, uuidParam(c, 'id', 'target'));
  const body = await parseJson(c, DrillPolicyBody);
  if (body.cron) parseSchedule(body.cron, body.timezone);
  const values = {
    cron: body.cron ?? null,
    timezone: body.timezone,
    every_n_backups: body.everyNBackups ?? null,
    enabled: body.enabled,
    max_restore_seconds: body.maxRestoreSeconds ?? null,
    max_data_age_seconds: body.maxDataAgeSeconds ?? null,
  };
  const row = await db
    .insertInto('drill_policies')
    .values({ target_id: id, ...values })
    .onConflict((oc) => oc.column('target_id').doUpdateSet({ ...values, updated_at: new Date() }))
    .returningAll()
    .executeTakeFirstOrThrow();
  return c.json(policyView(row));
}
