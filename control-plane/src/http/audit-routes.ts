import { Hono } from 'hono';
import { stream } from 'hono/streaming';
import { sql } from 'kysely';
import { z } from 'zod';
import type { Db } from '../db/database.js';
import { invalidQuery } from '../problem.js';
import { type AuditRow, verifyAuditChain } from '../services/audit.js';
import type { AuthEnv } from './auth.js';

const Filters = z.object({
  actor: z.string().max(200).optional(),
  action: z.string().max(300).optional(),
  outcome: z.enum(['success', 'failure', 'denied']).optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
  /** Rows with an id below this (paging backwards from the newest). */
  before: z
    .string()
    .regex(/^\d{1,18}$/)
    .optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  format: z.enum(['jsonl', 'csv']).default('jsonl'),
});
type Filters = z.infer<typeof Filters>;

const view = (r: AuditRow) => ({
  id: String(r.id),
  at: r.at.toISOString(),
  actor: r.actor,
  actorId: r.actor_id,
  sourceIp: r.source_ip,
  action: r.action,
  target: r.target,
  outcome: r.outcome,
  status: r.status,
  detail: r.detail,
  prevHash: r.prev_hash,
  hash: r.hash,
});

const CSV_COLUMNS = [
  'id',
  'at',
  'actor',
  'actorId',
  'sourceIp',
  'action',
  'target',
  'outcome',
  'status',
  'hash',
] as const;
const csvCell = (v: unknown) => {
  const s = v === null || v === undefined ? '' : String(v);
  // Quote always; a leading = + - @ is prefixed so a spreadsheet does not run it as a formula.
  return `"${(/^[=+\-@]/.test(s) ? `'${s}` : s).replace(/"/g, '""')}"`;
};

/** GET /audit (newest first, paged), GET /audit/export (oldest first, streamed), GET /audit/verify. Admin only. */
export function auditRoutes(db: Db) {
  const r = new Hono<AuthEnv>();

  const filtered = (f: Filters) => {
    let q = db.selectFrom('audit_log').selectAll();
    if (f.actor) q = q.where('actor', '=', f.actor);
    if (f.action) q = q.where('action', '=', f.action);
    if (f.outcome) q = q.where('outcome', '=', f.outcome);
    if (f.since) q = q.where('at', '>=', new Date(f.since));
    if (f.until) q = q.where('at', '<', new Date(f.until));
    return q;
  };
  const parse = (c: { req: { query(): Record<string, string> } }) => {
    const p = Filters.safeParse(c.req.query());
    if (!p.success) throw invalidQuery(p.error);
    return p.data;
  };

  r.get('/audit', async (c) => {
    const f = parse(c);
    let q = filtered(f);
    if (f.before) q = q.where(sql<boolean>`id < ${f.before}::bigint`);
    const rows = await q.orderBy('id', 'desc').limit(f.limit).execute();
    const last = rows.at(-1);
    return c.json({ items: rows.map(view), next: rows.length === f.limit && last ? String(last.id) : null });
  });

  r.get('/audit/export', async (c) => {
    const f = parse(c);
    c.header('content-type', f.format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson');
    c.header('content-disposition', `attachment; filename="dbbackup-audit.${f.format}"`);
    return stream(c, async (s) => {
      if (f.format === 'csv') await s.write(`${CSV_COLUMNS.join(',')}\n`);
      let after = '0';
      for (;;) {
        const page = await filtered(f)
          .where(sql<boolean>`id > ${after}::bigint`)
          .orderBy('id')
          .limit(1000)
          .execute();
        if (page.length === 0) break;
        let chunk = '';
        for (const row of page) {
          const v = view(row);
          chunk +=
            f.format === 'csv'
              ? `${CSV_COLUMNS.map((k) => csvCell(v[k])).join(',')}\n`
              : `${JSON.stringify(v)}\n`;
        }
        await s.write(chunk);
        after = String((page.at(-1) as AuditRow).id);
      }
    });
  });

  r.get('/audit/verify', async (c) => c.json(await verifyAuditChain(db)));

  return r;
}
