import { RetentionPolicy } from '@dbbackup/proto';
import { Hono } from 'hono';
import { z } from 'zod';
import { type Db, json } from '../db/database.js';
import { badRequest, notFound } from '../problem.js';
import { bumpAgentConfig } from '../services/agent-config.js';
import { createCommand } from '../services/command-state.js';
import { retentionPreview } from '../services/retention-catalogue.js';
import { checkStorage, storageRefFor } from '../services/storage-specs.js';
import { targetSpecFromRow } from '../services/target-specs.js';
import type { AuthEnv } from './auth.js';
import { parseJson, uuidParam } from './input.js';
import type { Ctx, RouteDeps } from './route-deps.js';

const CleanupBody = z
  .object({
    olderThan: z.string().regex(/^\d{1,5}[dw]$/, 'a number of days or weeks, like 30d or 4w'),
    dryRun: z.boolean().default(false),
    storageId: z.uuid().optional(),
  })
  .strict();

/** A target's retention policy, its preview, and a one-off cleanup. */
export function retentionRoutes(d: RouteDeps) {
  const { db } = d;
  const api = new Hono<AuthEnv>();
  api.get('/targets/:id/retention', async (c) => {
    const t = await targetRow(db, uuidParam(c, 'id', 'target'));
    return c.json({ policy: (t.options as { retention?: RetentionPolicy }).retention ?? {} });
  });
  /** Set the policy; the agent gets it with its configuration and applies it after each good backup and daily. */
  api.put('/targets/:id/retention', async (c) => {
    const t = await targetRow(db, uuidParam(c, 'id', 'target'));
    const body = await parseJson(c, z.object({ policy: RetentionPolicy }).strict());
    const options = { ...(t.options as Record<string, unknown>), retention: body.policy };
    await db
      .updateTable('targets')
      .set({ options: json(options), updated_at: new Date() })
      .where('id', '=', t.id)
      .execute();
    await bumpAgentConfig(db, d.bus, t.agent_id, c.get('principal').tokenId);
    return c.json({ policy: body.policy });
  });
  api.get('/targets/:id/retention/preview', async (c) => {
    const t = await targetRow(db, uuidParam(c, 'id', 'target'));
    const policy = policyFromQuery(c) ?? (t.options as { retention?: RetentionPolicy }).retention ?? {};
    return c.json({ policy, ...(await retentionPreview(db, t.id, policy)) });
  });
  api.post('/targets/:id/cleanup', (c) => cleanup(c, d));
  return api;
}

const POLICY_KEYS = ['keepLast', 'keepDays', 'daily', 'weekly', 'monthly', 'yearly'] as const;

/**
 * A policy to preview before it is saved: `?keepLast=7&daily=14` (the preview of the saved
 * policy when no rule is given; `?empty=true` previews the empty policy).
 */
function policyFromQuery(c: Ctx): RetentionPolicy | undefined {
  const given = POLICY_KEYS.filter((k) => c.req.query(k) !== undefined);
  if (given.length === 0) return c.req.query('empty') === 'true' ? {} : undefined;
  const raw: Record<string, number> = {};
  for (const k of given) {
    const v = c.req.query(k) ?? '';
    if (!/^\d{1,6}$/.test(v)) throw badRequest(`${k}: a whole number`, { field: k });
    raw[k] = Number(v);
  }
  const parsed = RetentionPolicy.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw badRequest(`${String(issue.path[0])}: ${issue.message}`, { field: String(issue.path[0]) });
  }
  return parsed.data;
}

async function targetRow(db: Db, id: string) {
  const t = await db.selectFrom('targets').selectAll().where('id', '=', id).executeTakeFirst();
  if (!t) throw notFound('target');
  return t;
}

/**
 * `cleanup --older-than 30d [--dry-run]`: backups older than the age go, except the
 * newest good one. A dry run answers from the catalogue; otherwise the agent applies it
 * to what the storage holds (202 with the command to follow).
 */
async function cleanup(c: Ctx, { db, bus }: RouteDeps) {
  const t = await targetRow(db, uuidParam(c, 'id', 'target'));
  const body = await parseJson(c, CleanupBody);
  const n = Number(body.olderThan.slice(0, -1));
  const days = body.olderThan.endsWith('w') ? n * 7 : n;
  if (days < 1) throw badRequest('olderThan: must be at least 1 day', { field: 'olderThan' });
  const policy: RetentionPolicy = { keepDays: days };
  const decision = await retentionPreview(db, t.id, policy);
  if (body.dryRun) return c.json({ dryRun: true, olderThan: body.olderThan, ...decision });
  const agent = await db
    .selectFrom('agents')
    .select(['hostname', 'labels'])
    .where('id', '=', t.agent_id)
    .executeTakeFirstOrThrow();
  await checkStorage(db, body.storageId);
  const storage = await storageRefFor(db, body.storageId ?? t.storage_id);
  const commandId = await createCommand(db, {
    agentId: t.agent_id,
    command: {
      kind: 'retention.apply',
      target: targetSpecFromRow(t),
      storage,
      naming: { env: (agent.labels as Record<string, string>).env ?? 'default', agentName: agent.hostname },
      policy,
    },
    ttlSeconds: 86_400,
    createdBy: c.get('principal').tokenId,
  });
  await bus.publish({ kind: 'commands', agentId: t.agent_id });
  return c.json({ dryRun: false, olderThan: body.olderThan, commandId, expected: decision }, 202);
}
