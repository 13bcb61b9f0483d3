import { DataDirectory, type RecoveryTarget } from '@dbbackup/proto';
import { Hono } from 'hono';
import { z } from 'zod';
import { notFound } from '../problem.js';
import { startPitrRestore } from '../services/pitr-restore.js';
import { recoveryWindow } from '../services/recovery-window.js';
import { startWalVerify } from '../services/wal-verify.js';
import type { AuthEnv } from './auth.js';
import { parseJson, uuidParam } from './input.js';
import type { RouteDeps } from './route-deps.js';
import { jobView } from './views.js';

/** `pointInTime` (ISO time), `lsn`, or `"latest"`: exactly one. */
const PitrBody = z
  .object({
    pointInTime: z.iso.datetime({ offset: true }).optional(),
    lsn: z
      .string()
      .regex(/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i, 'an LSN such as 0/3000060')
      .optional(),
    latest: z.literal(true).optional(),
    dataDirectory: DataDirectory,
    port: z.number().int().min(1024).max(65535).default(5433),
  })
  .strict()
  .refine((b) => [b.pointInTime, b.lsn, b.latest].filter((x) => x !== undefined).length === 1, {
    message: 'give exactly one of pointInTime, lsn or latest: true',
  });

function recoveryTarget(b: z.infer<typeof PitrBody>): RecoveryTarget {
  if (b.pointInTime) return { kind: 'time', time: new Date(b.pointInTime).toISOString() };
  if (b.lsn) return { kind: 'lsn', lsn: b.lsn.toUpperCase() };
  return { kind: 'latest' };
}

/** Point-in-time recovery of physical targets: the recovery window, and a restore to any point in it. */
export function pitrRoutes(d: RouteDeps) {
  const { db } = d;
  const api = new Hono<AuthEnv>();
  api.get('/targets/:id/recovery-window', async (c) => {
    const id = uuidParam(c, 'id', 'target');
    const t = await db.selectFrom('targets').select('id').where('id', '=', id).executeTakeFirst();
    if (!t) throw notFound('target');
    const w = await recoveryWindow(db, id);
    return c.json({
      targetId: id,
      earliest: w.earliest?.toISOString() ?? null,
      latest: w.latest?.toISOString() ?? null,
      ranges: w.ranges.map((r) => ({ ...r, from: r.from.toISOString(), to: r.to.toISOString() })),
      gaps: w.gaps.map((g) => ({
        ...g,
        restorableUntil: g.restorableUntil?.toISOString() ?? null,
        walResumesAt: g.walResumesAt?.toISOString() ?? null,
      })),
      baseBackups: w.baseBackups.map((b) => ({
        backupId: b.backupId,
        timeline: b.timeline,
        stopLsn: b.stopLsn,
        consistentAt: b.consistentAt.toISOString(),
      })),
      walFiles: w.runs.reduce((n, r) => n + r.last - r.first + 1, 0),
      archiver: await archiverStatus(d, id),
    });
  });
  api.post('/targets/:id/restore', async (c) => {
    const id = uuidParam(c, 'id', 'target');
    const body = await parseJson(c, PitrBody);
    const job = await startPitrRestore(
      db,
      d.box,
      id,
      { target: recoveryTarget(body), dataDirectory: body.dataDirectory, port: body.port },
      c.get('principal').tokenId,
      d.commandTtlSeconds,
    );
    await d.bus.publish({ kind: 'commands', agentId: job.agent_id });
    return c.json(jobView(job), 202, { location: `/api/v1/jobs/${job.id}` });
  });
  api.post('/targets/:id/verify-chain', async (c) => {
    const id = uuidParam(c, 'id', 'target');
    const job = await startWalVerify(db, d.box, id, c.get('principal').tokenId, d.commandTtlSeconds);
    await d.bus.publish({ kind: 'commands', agentId: job.agent_id });
    return c.json(jobView(job), 202, { location: `/api/v1/jobs/${job.id}` });
  });
  return api;
}

/** The agent's latest report on archiving this target's WAL. */
async function archiverStatus({ db }: RouteDeps, targetId: string) {
  const s = await db
    .selectFrom('wal_status')
    .selectAll()
    .where('target_id', '=', targetId)
    .executeTakeFirst();
  if (!s) return null;
  return {
    receiving: s.receiving,
    spoolFiles: s.spool_files,
    spoolBytes: s.spool_bytes,
    spoolLimitBytes: s.spool_limit_bytes,
    slotRetainedBytes: s.slot_retained_bytes,
    lastArchived: s.last_archived,
    error: s.error,
    reportedAt: new Date(s.reported_at).toISOString(),
  };
}
