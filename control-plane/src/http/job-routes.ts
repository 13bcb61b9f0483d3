import { Hono } from 'hono';
import { notFound } from '../problem.js';
import { startBackupJob } from '../services/job-creation.js';
import type { AuthEnv } from './auth.js';
import { uuidParam, uuidQuery } from './input.js';
import { jobEvents, logLinesAfter } from './job-stream.js';
import { keyset, paged, pageOf, timeKey } from './paging.js';
import type { Ctx, RouteDeps } from './route-deps.js';
import { jobView } from './views.js';

/** Jobs: a backup started by hand, and every job's state, progress and log. */
export function jobRoutes(d: RouteDeps) {
  const { db } = d;
  const api = new Hono<AuthEnv>();
  api.post('/targets/:id/backups', async (c) => {
    const id = uuidParam(c, 'id', 'target');
    const job = await startBackupJob(db, d.kek, id, c.get('principal').tokenId, d.commandTtlSeconds);
    await d.bus.publish({ kind: 'commands', agentId: job.agent_id });
    return c.json(jobView(job), 202, { location: `/api/v1/jobs/${job.id}` });
  });
  api.get('/jobs', async (c) => {
    const page = pageOf(c, 200);
    let q = db.selectFrom('jobs').selectAll();
    const target = uuidQuery(c, 'target');
    if (target) q = q.where('target_id', '=', target);
    const state = c.req.query('state');
    if (state) q = q.where('state', '=', state as never);
    const rows = await keyset(q, { time: 'created_at' }, 'desc', page).execute();
    const p = paged(rows, page, (r) => timeKey(r.created_at, r.id));
    return c.json({ items: p.items.map(jobView), nextCursor: p.nextCursor });
  });
  api.get('/jobs/:id', async (c) => {
    const id = uuidParam(c, 'id', 'job');
    const row = await db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('job');
    return c.json(jobView(row));
  });
  api.get('/jobs/:id/logs', (c) => jobLogs(c, d));
  api.get('/jobs/:id/events', (c) => jobEvents(c, d, uuidParam(c, 'id', 'job')));
  return api;
}

/** A job's log lines after `?after=<last id>` (poll it while the job runs), with the job's state. */
async function jobLogs(c: Ctx, { db }: RouteDeps) {
  const id = uuidParam(c, 'id', 'job');
  const job = await db.selectFrom('jobs').select(['id', 'state']).where('id', '=', id).executeTakeFirst();
  if (!job) throw notFound('job');
  const after = Number(c.req.query('after') ?? 0) || 0;
  const rows = await logLinesAfter(db, id, after, 1000);
  return c.json({
    state: job.state,
    items: rows.map((r) => ({ id: r.id, at: r.at, level: r.level, message: r.message })),
  });
}
