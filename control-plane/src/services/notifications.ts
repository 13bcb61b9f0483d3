import { createHmac, randomUUID } from 'node:crypto';
import type { Logger } from '@dbbackup/logger';
import { sql } from 'kysely';
import nodemailer from 'nodemailer';
import { z } from 'zod';
import type { SecretBox } from '../crypto/secret-box.js';
import { type Db, json } from '../db/database.js';
import type { FinishedJob } from './finished-job.js';
import { periodic } from './periodic.js';

/**
 * Notifications: channels (generic webhook signed with HMAC-SHA256, Slack
 * incoming webhook, email over SMTP) subscribe to events. An event becomes one
 * delivery row per subscribed channel, written in the same transaction as its
 * cause; the Notifier sends due deliveries, retrying with exponential backoff,
 * and keeps the outcome as the delivery log. Channel settings (URLs carry
 * tokens, SMTP passwords) are sealed with the master key.
 */
export const NOTIFY_EVENTS = [
  'backup.failed',
  'backup.succeeded',
  'backup.missed',
  'job.stalled',
  'agent.offline',
  'agent.online',
  'storage.error',
  'verify.failed',
  'security.event_rejected',
  'security.key_unavailable',
  'drill.failed',
  'drill.rto_exceeded',
  'drill.rpo_exceeded',
  'wal.gap',
  'wal.archive_lag',
] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];
/** What a channel gets when it names no events: everything but the (noisy) successes. */
export const DEFAULT_EVENTS: NotifyEvent[] = NOTIFY_EVENTS.filter((e) => e !== 'backup.succeeded');

const HttpUrl = z.url({ protocol: /^https?$/ });
export const ChannelConfig = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('webhook'), url: HttpUrl, secret: z.string().min(16).max(256) }).strict(),
  z.object({ kind: z.literal('slack'), url: HttpUrl }).strict(),
  z
    .object({
      kind: z.literal('email'),
      host: z.string().min(1).max(255),
      port: z.number().int().min(1).max(65535).default(587),
      /** Implicit TLS (port 465); otherwise STARTTLS when the server offers it. */
      secure: z.boolean().default(false),
      user: z.string().max(255).optional(),
      password: z.string().max(1024).optional(),
      from: z.email(),
      to: z.array(z.email()).min(1).max(50),
    })
    .strict(),
]);
export type ChannelConfig = z.infer<typeof ChannelConfig>;

export interface NotifyPayload {
  title: string;
  message: string;
  [k: string]: unknown;
}

/** The enabled channels subscribed to `event` (or just `onlyChannel`, for a test message). */
function subscribed(db: Db, event: NotifyEvent | 'test', onlyChannel?: string) {
  const q = db.selectFrom('notification_channels').select('id').where('enabled', '=', true);
  return (
    onlyChannel
      ? q.where('id', '=', onlyChannel)
      : q.where(sql<boolean>`events @> ${JSON.stringify([event])}::jsonb`)
  ).execute();
}

/** Queue one `event` per payload for every enabled channel subscribed to it: one read of the channels, one insert. */
export async function notifyEach(db: Db, event: NotifyEvent, payloads: NotifyPayload[]) {
  if (!payloads.length) return;
  const channels = await subscribed(db, event);
  if (!channels.length) return;
  const at = new Date().toISOString();
  const rows = payloads.flatMap((p) =>
    channels.map((c) => ({
      id: randomUUID(),
      channel_id: c.id,
      event,
      payload: json({ ...p, at }),
      state: 'pending' as const,
    })),
  );
  for (let i = 0; i < rows.length; i += 1000)
    await db
      .insertInto('notification_deliveries')
      .values(rows.slice(i, i + 1000))
      .execute();
}

/** Queue `event` for every enabled channel subscribed to it (inside the caller's transaction). */
export async function notify(
  db: Db,
  event: NotifyEvent | 'test',
  payload: NotifyPayload,
  onlyChannel?: string,
  /** Written already leased for this long, so the background sender leaves it to the caller. */
  heldForMs?: number,
) {
  const channels = await subscribed(db, event, onlyChannel);
  if (channels.length === 0) return [];
  const body = json({ ...payload, at: new Date().toISOString() });
  const rows = channels.map((c) => ({
    id: randomUUID(),
    channel_id: c.id,
    event,
    payload: body,
    state: 'pending' as const,
    ...(heldForMs ? { next_attempt_at: new Date(Date.now() + heldForMs) } : {}),
  }));
  await db.insertInto('notification_deliveries').values(rows).execute();
  return rows.map((r) => r.id);
}

/** Headers of a signed webhook: receivers recompute HMAC-SHA256(secret, `${t}.${body}`) and reject old t. */
export function signWebhook(secret: string, body: string, t = Math.floor(Date.now() / 1000)) {
  const v1 = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
  return { 'x-dbbackup-timestamp': String(t), 'x-dbbackup-signature': `t=${t},v1=${v1}` };
}

const STORAGE_ERROR = /\b(S3|bucket|multipart|storage|NoSuchBucket|AccessDenied|SlowDown|ENOSPC|EDQUOT)\b/i;

/** Events for a finished job (job-finished.ts calls it where its terminal state is applied). */
export async function notifyJobFinished(db: Db, j: FinishedJob) {
  const where = `${j.target ?? 'a deleted target'} on ${j.hostname ?? 'an unknown host'}`;
  const engine = j.targetEngine ?? j.backupEngine;
  const base = { jobId: j.id, targetId: j.target_id, target: j.target, engine, host: j.hostname };
  const error = j.error as { code?: string; message?: string } | null;
  if (j.state === 'failed' && j.type === 'backup') {
    await notify(db, 'backup.failed', {
      ...base,
      title: `Backup of ${where} failed`,
      message: error?.message ?? 'failed',
      error,
    });
    if (STORAGE_ERROR.test(`${error?.code ?? ''} ${error?.message ?? ''}`)) {
      await notify(db, 'storage.error', {
        ...base,
        title: `Storage error while backing up ${where}`,
        message: error?.message ?? 'storage error',
        error,
      });
    }
  } else if (j.state === 'succeeded' && j.type === 'backup') {
    // The job's result: the catalogue entry's summary (catalogue.ts recordBackup).
    const summary = j.result as { sizeBytes?: number; backupId?: string } | null;
    await notify(db, 'backup.succeeded', {
      ...base,
      title: `Backup of ${where} succeeded`,
      message: `${summary?.sizeBytes ?? '?'} bytes stored`,
      backupId: summary?.backupId,
    });
  } else if (j.state === 'failed' && j.type === 'verify') {
    await notify(db, 'verify.failed', {
      ...base,
      title: `Verification of a backup of ${where} failed`,
      message: error?.message ?? 'failed',
      error,
    });
  }
}

export interface NotifierOptions {
  retryBaseMs: number;
  maxAttempts: number;
  intervalMs: number;
  timeoutMs: number;
}

/** Sends due deliveries: claims a batch (lease), sends each, records the outcome, retries with backoff. */
export class Notifier {
  #worker: { stop(): Promise<void> } | undefined;
  constructor(
    readonly db: Db,
    readonly box: SecretBox,
    readonly log: Logger,
    readonly o: NotifierOptions,
  ) {}

  start() {
    this.#worker = periodic(this.o.intervalMs, () => this.tick(), this.log, 'notifications');
  }

  async stop() {
    await this.#worker?.stop();
  }

  async tick() {
    const due = await sql<{
      id: string;
      channel_id: string;
      event: string;
      payload: Record<string, unknown>;
      attempts: number;
    }>`
      UPDATE notification_deliveries SET next_attempt_at = now() + interval '5 minutes'
      WHERE id IN (
        SELECT id FROM notification_deliveries
        WHERE state = 'pending' AND next_attempt_at <= now()
        ORDER BY next_attempt_at LIMIT 20 FOR UPDATE SKIP LOCKED)
      RETURNING id, channel_id, event, payload, attempts`.execute(this.db);
    for (const d of due.rows) await this.deliver(d);
  }

  async deliver(d: {
    id: string;
    channel_id: string;
    event: string;
    payload: Record<string, unknown>;
    attempts: number;
  }) {
    const ch = await this.db
      .selectFrom('notification_channels')
      .select(['id', 'kind', 'sealed_config'])
      .where('id', '=', d.channel_id)
      .executeTakeFirst();
    const attempts = d.attempts + 1;
    try {
      if (!ch) throw new Error('channel deleted');
      await this.send(JSON.parse(this.box.open(ch.sealed_config)) as ChannelConfig, d);
      await this.db
        .updateTable('notification_deliveries')
        .set({ state: 'delivered', attempts, delivered_at: new Date(), last_error: null })
        .where('id', '=', d.id)
        .execute();
    } catch (err) {
      const message = (err as Error).message.slice(0, 500);
      const last = attempts >= this.o.maxAttempts;
      await this.db
        .updateTable('notification_deliveries')
        .set({
          state: last ? 'failed' : 'pending',
          attempts,
          last_error: message,
          next_attempt_at: new Date(Date.now() + this.o.retryBaseMs * 2 ** (attempts - 1)),
        })
        .where('id', '=', d.id)
        .execute();
      this.log.warn(
        { deliveryId: d.id, event: d.event, attempts, err: message },
        'notification not delivered',
      );
    }
  }

  async send(cfg: ChannelConfig, d: { id: string; event: string; payload: Record<string, unknown> }) {
    const p = d.payload as NotifyPayload;
    if (cfg.kind === 'email') {
      const transport = nodemailer.createTransport({
        host: cfg.host,
        port: cfg.port,
        secure: cfg.secure,
        ...(cfg.user ? { auth: { user: cfg.user, pass: cfg.password ?? '' } } : {}),
        connectionTimeout: this.o.timeoutMs,
        greetingTimeout: this.o.timeoutMs,
        socketTimeout: this.o.timeoutMs,
      });
      try {
        await transport.sendMail({
          from: cfg.from,
          to: cfg.to,
          subject: `[dbbackup] ${p.title}`,
          text: `${p.message}\n\nevent: ${d.event}\n${JSON.stringify(p, null, 2)}\n`,
          headers: { 'X-DBBackup-Event': d.event, 'X-DBBackup-Delivery': d.id },
        });
      } finally {
        transport.close();
      }
      return;
    }
    const body =
      cfg.kind === 'slack'
        ? JSON.stringify({ text: `*[dbbackup] ${p.title}*\n${p.message}` })
        : JSON.stringify({ id: d.id, event: d.event, ...p });
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      ...(cfg.kind === 'webhook'
        ? { 'x-dbbackup-event': d.event, 'x-dbbackup-delivery': d.id, ...signWebhook(cfg.secret, body) }
        : {}),
    };
    const res = await fetch(cfg.url, {
      method: 'POST',
      headers,
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(this.o.timeoutMs),
    });
    await res.body?.cancel();
    if (res.status < 200 || res.status >= 300) throw new Error(`${cfg.kind} answered HTTP ${res.status}`);
  }
}
