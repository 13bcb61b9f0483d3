import { randomUUID } from 'node:crypto';
import { Hono } from 'hono';
import type { Selectable } from 'kysely';
import { z } from 'zod';
import type { SecretBox } from '../crypto/secret-box.js';
import { type Db, json } from '../db/database.js';
import type { NotificationChannelsTable } from '../db/schema.js';
import { conflict, invalidQuery, notFound } from '../problem.js';
import {
  ChannelConfig,
  DEFAULT_EVENTS,
  NOTIFY_EVENTS,
  type Notifier,
  notify,
} from '../services/notifications.js';
import type { AuthEnv } from './auth.js';
import { parseJson, uuidParam, uuidQuery } from './input.js';
import type { Ctx } from './route-deps.js';

const Events = z.array(z.enum(NOTIFY_EVENTS)).min(1).max(NOTIFY_EVENTS.length);
const Name = z.string().regex(/^[a-zA-Z0-9_.-]{1,64}$/, '1-64 of letters, digits, _ . -');

const ChannelBody = z.object({
  name: Name,
  config: ChannelConfig,
  events: Events.optional(),
  enabled: z.boolean().default(true),
});
const ChannelPatch = z
  .object({
    config: ChannelConfig.optional(),
    events: Events.optional(),
    enabled: z.boolean().optional(),
  })
  .strict();
const DeliveryQuery = z.object({
  state: z.enum(['pending', 'delivered', 'failed']).optional(),
  event: z.string().max(64).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

/** Enough to recognise a channel, nothing that works as a credential (webhook URLs often are one). */
function describe(cfg: ChannelConfig) {
  if (cfg.kind === 'email') return { host: cfg.host, port: cfg.port, from: cfg.from, to: cfg.to };
  return { urlHost: new URL(cfg.url).host };
}

function channelView(box: SecretBox, row: Selectable<NotificationChannelsTable>) {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    events: row.events,
    enabled: row.enabled,
    settings: describe(JSON.parse(box.open(row.sealed_config)) as ChannelConfig),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Notification channels (email, webhooks), their deliveries, and a test message. */
export function notificationRoutes(d: { db: Db; box: SecretBox; notifier: Notifier }) {
  const { db, box } = d;
  const r = new Hono<AuthEnv>();
  r.post('/notifications/channels', (c) => createChannel(c, db, box));
  r.get('/notifications/channels', async (c) => {
    const rows = await db.selectFrom('notification_channels').selectAll().orderBy('name').execute();
    // With the events a channel can name, and those it gets when it names none.
    return c.json({
      items: rows.map((x) => channelView(box, x)),
      events: NOTIFY_EVENTS,
      defaultEvents: DEFAULT_EVENTS,
    });
  });

  r.get('/notifications/channels/:id', async (c) => {
    const id = uuidParam(c, 'id', 'channel');
    const row = await db
      .selectFrom('notification_channels')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) throw notFound('channel');
    return c.json(channelView(box, row));
  });

  r.patch('/notifications/channels/:id', (c) => patchChannel(c, db, box));
  r.delete('/notifications/channels/:id', async (c) => {
    const id = uuidParam(c, 'id', 'channel');
    const res = await db.deleteFrom('notification_channels').where('id', '=', id).executeTakeFirst();
    if (Number(res.numDeletedRows) === 0) throw notFound('channel');
    return c.body(null, 204);
  });
  r.get('/notifications/deliveries', (c) => listDeliveries(c, db));
  // Send a test message now and answer with the outcome (a failure is retried like any other).
  r.post('/notifications/test', (c) => testChannel(c, db, d.notifier));
  return r;
}

async function createChannel(c: Ctx, db: Db, box: SecretBox) {
  const body = await parseJson(c, ChannelBody);
  const row = await db
    .insertInto('notification_channels')
    .values({
      id: randomUUID(),
      name: body.name,
      kind: body.config.kind,
      sealed_config: box.seal(JSON.stringify(body.config)),
      events: json(body.events ?? DEFAULT_EVENTS),
      enabled: body.enabled,
    })
    .onConflict((oc) => oc.column('name').doNothing())
    .returningAll()
    .executeTakeFirst();
  if (!row) throw conflict(`a channel named ${body.name} exists`);
  return c.json(channelView(box, row), 201);
}

async function patchChannel(c: Ctx, db: Db, box: SecretBox) {
  const id = uuidParam(c, 'id', 'channel');
  const body = await parseJson(c, ChannelPatch);
  const set: Record<string, unknown> = { updated_at: new Date() };
  if (body.config)
    Object.assign(set, { kind: body.config.kind, sealed_config: box.seal(JSON.stringify(body.config)) });
  if (body.events) set.events = json(body.events);
  if (body.enabled !== undefined) set.enabled = body.enabled;
  const row = await db
    .updateTable('notification_channels')
    .set(set)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
  if (!row) throw notFound('channel');
  return c.json(channelView(box, row));
}

async function listDeliveries(c: Ctx, db: Db) {
  const q = DeliveryQuery.safeParse(c.req.query());
  if (!q.success) throw invalidQuery(q.error);
  let sel = db.selectFrom('notification_deliveries').selectAll();
  const channel = uuidQuery(c, 'channel');
  if (channel) sel = sel.where('channel_id', '=', channel);
  if (q.data.state) sel = sel.where('state', '=', q.data.state);
  if (q.data.event) sel = sel.where('event', '=', q.data.event);
  const rows = await sel.orderBy('created_at', 'desc').limit(q.data.limit).execute();
  return c.json({
    items: rows.map((x) => ({
      id: x.id,
      channelId: x.channel_id,
      event: x.event,
      state: x.state,
      attempts: x.attempts,
      lastError: x.last_error,
      nextAttemptAt: x.state === 'pending' ? x.next_attempt_at : null,
      createdAt: x.created_at,
      deliveredAt: x.delivered_at,
      payload: x.payload,
    })),
  });
}

async function testChannel(c: Ctx, db: Db, notifier: Notifier) {
  const body = await parseJson(c, z.object({ channelId: z.uuid() }));
  const ch = await db
    .selectFrom('notification_channels')
    .select(['id', 'name', 'enabled'])
    .where('id', '=', body.channelId)
    .executeTakeFirst();
  if (!ch) throw notFound('channel');
  if (!ch.enabled) throw conflict(`channel ${ch.name} is disabled; enable it to test it`);
  const [deliveryId] = await notify(
    db,
    'test',
    { title: `Test message for channel ${ch.name}`, message: 'If you can read this, the channel works.' },
    ch.id,
    // Written leased, so the background sender never picks it up while we send it here
    // (leasing it in a second statement left a moment in which it could be sent twice).
    300_000,
  );
  const row = await db
    .selectFrom('notification_deliveries')
    .selectAll()
    .where('id', '=', deliveryId as string)
    .executeTakeFirstOrThrow();
  await notifier.deliver({
    id: row.id,
    channel_id: row.channel_id,
    event: row.event,
    payload: row.payload,
    attempts: 0,
  });
  const after = await db
    .selectFrom('notification_deliveries')
    .selectAll()
    .where('id', '=', row.id)
    .executeTakeFirstOrThrow();
  return c.json(
    {
      deliveryId: row.id,
      state: after.state === 'delivered' ? 'delivered' : 'failed',
      error: after.last_error,
    },
    200,
  );
}
