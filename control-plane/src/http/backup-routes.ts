import { Hono } from 'hono';
import { z } from 'zod';
import { notFound } from '../problem.js';
import { requestBackupDelete } from '../services/backup-delete.js';
import { startRestoreOrVerify } from '../services/job-creation.js';
import type { AuthEnv } from './auth.js';
import { parseJson, uuidParam, uuidQuery } from './input.js';
import { keyset, paged, pageOf, timeKey } from './paging.js';
import type { Ctx, RouteDeps } from './route-deps.js';
import { backupView, jobView } from './views.js';

const RestoreBody = z
  .object({
    database: z.string().min(1).max(4096).optional(),
    conflict: z.enum(['fail', 'clean', 'create']).default('fail'),
    tables: z.array(z.string().min(1).max(127)).max(1000).optional(),
    targetId: z.uuid().optional(),
  })
  .strict();

/** The backup catalogue, and the jobs that read a backup back: verify and restore. */
export function backupRoutes(d: RouteDeps) {
  const { db } = d;
  const api = new Hono<AuthEnv>();
  api.get('/backups', async (c) => {
    const page = pageOf(c, 500);
    let q = db.selectFrom('backups').selectAll();
    // Backups removed by retention are listed only when asked for.
    if (c.req.query('deleted') !== 'true') q = q.where('deleted_at', 'is', null);
    const target = uuidQuery(c, 'target');
    if (target) q = q.where('target_id', '=', target);
    const rows = await keyset(q, { time: 'started_at' }, 'desc', page).execute();
    const p = paged(rows, page, (r) => timeKey(r.started_at, r.id));
    return c.json({ items: p.items.map(backupView), nextCursor: p.nextCursor });
  });
  api.get('/backups/:id', async (c) => {
    const id = uuidParam(c, 'id', 'backup');
    const row = await db.selectFrom('backups').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('backup');
    return c.json(backupView(row));
  });
  /** Delete one backup from storage (202: the agent's command to follow; the catalogue keeps a tombstone). */
  api.delete('/backups/:id', async (c) => {
    const p = c.get('principal');
    const r = await requestBackupDelete(db, uuidParam(c, 'id', 'backup'), {
      tokenId: p.tokenId,
      name: p.name,
    });
    await d.bus.publish({ kind: 'commands', agentId: r.agentId });
    return c.json({ commandId: r.commandId, backupId: r.backupId }, 202);
  });
  api.post('/backups/:id/verify', (c) => readBack(c, d, { type: 'verify' }));
  api.post('/backups/:id/restore', async (c) => {
    const body = await parseJson(c, RestoreBody);
    return readBack(c, d, { type: 'restore', ...body });
  });
  return api;
}

async function readBack(c: Ctx, d: RouteDeps, o: Parameters<typeof startRestoreOrVerify>[3]) {
  const id = uuidParam(c, 'id', 'backup');
  const job = await startRestoreOrVerify(d.db, d.box, id, o, c.get('principal').tokenId, d.commandTtlSeconds);
  await d.bus.publish({ kind: 'commands', agentId: job.agent_id });
  return c.json(jobView(job), 202);
}
