import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type Agent,
  type ControlPlane,
  cleanupAll,
  onCleanup,
  startAgent,
  trackDir,
  waitFor,
} from '@dbbackup/testkit';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from './backup-support.js';
import { controlPlane, getAgent } from './support.js';

/**
 * Each channel against a real local receiver: an HTTP server for the webhook and
 * Slack (Slack's incoming webhook is a plain HTTPS POST; only its address is
 * local here) and an SMTP server (smtp-server) for email.
 */
type Received = { path: string; headers: http.IncomingHttpHeaders; body: string; at: number };

function httpReceiver() {
  const got: Received[] = [];
  // Fail the next N deliveries of one event only: other events (an agent flapping
  // online/offline under load) must not use up the failures meant for it.
  const state = { fail: {} as Record<string, number> };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      let event = '';
      try {
        event = String((JSON.parse(body) as { event?: unknown }).event ?? '');
      } catch {}
      if ((state.fail[event] ?? 0) > 0) {
        state.fail[event] = (state.fail[event] ?? 0) - 1;
        res.writeHead(500).end('receiver down');
        return;
      }
      got.push({ path: req.url ?? '', headers: req.headers, body, at: Date.now() });
      res.writeHead(204).end();
    });
  });
  return new Promise<{ url: string; got: Received[]; state: typeof state }>((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      onCleanup(() => new Promise<void>((r) => server.close(() => r())));
      resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, got, state });
    });
  });
}

function smtpReceiver() {
  const mails: { from: string; to: string[]; data: string }[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, done) {
      let data = '';
      stream.on('data', (c) => {
        data += c;
      });
      stream.on('end', () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          data,
        });
        done();
      });
    },
  });
  return new Promise<{ port: number; mails: typeof mails }>((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      onCleanup(() => new Promise<void>((r) => server.close(() => r())));
      resolve({ port: (server.server.address() as AddressInfo).port, mails });
    });
  });
}

const SECRET = 'whsec-0123456789abcdef';
let cp: ControlPlane;
let agent: Agent;
let hook: Awaited<ReturnType<typeof httpReceiver>>;
let slack: Awaited<ReturnType<typeof httpReceiver>>;
let smtp: Awaited<ReturnType<typeof smtpReceiver>>;
const channel: Record<string, string> = {};
let work: string;
let storageId: string;

const ofEvent = (r: Received[], event: string) => r.filter((x) => JSON.parse(x.body).event === event);
const slackWith = (text: RegExp) => slack.got.filter((x) => text.test(JSON.parse(x.body).text));

async function sqliteTarget(name: string) {
  // A target is tested through its agent, which must be online (it may have been marked
  // offline for a moment on a loaded machine).
  await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'agent online' });
  const db = path.join(work, `${name}.db`);
  execFileSync('sqlite3', [db, 'CREATE TABLE t(v); INSERT INTO t VALUES (1);']);
  const t = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agent.id}/targets`, {
    engine: 'sqlite',
    name,
    connection: { path: db },
    storageId,
  });
  expect(t.status, JSON.stringify(t.body)).toBe(201);
  return { id: t.body.id, file: db };
}

beforeAll(async () => {
  [hook, slack, smtp] = await Promise.all([httpReceiver(), httpReceiver(), smtpReceiver()]);
  cp = await controlPlane({
    // Short enough for the offline test, long enough that a busy machine does not flap the agent.
    heartbeatIntervalMs: 1000,
    env: { DBBACKUP_NOTIFY_RETRY_BASE_MS: '200', DBBACKUP_NOTIFY_INTERVAL_MS: '100' },
  });
  work = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-notify-')));
  agent = await startAgent(cp);
  await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
  const s = await cp.api<{ id: string }>('POST', '/api/v1/storage', {
    kind: 'local',
    name: 'disk',
    directory: path.join(work, 'backups'),
  });
  storageId = s.body.id;
  const make = async (name: string, config: unknown, events?: string[]) => {
    const r = await cp.api<{ id: string }>('POST', '/api/v1/notifications/channels', {
      name,
      config,
      events,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    channel[name] = r.body.id;
  };
  await make('ops-hook', { kind: 'webhook', url: `${hook.url}/hooks/dbbackup`, secret: SECRET }, [
    'backup.failed',
    'backup.succeeded',
    'agent.offline',
    'agent.online',
  ]);
  await make('ops-slack', { kind: 'slack', url: `${slack.url}/services/T000/B000/XXXX` }, ['backup.failed']);
  await make('ops-mail', {
    kind: 'email',
    host: '127.0.0.1',
    port: smtp.port,
    from: 'dbbackup@example.test',
    to: ['oncall@example.test'],
  });
});
afterAll(cleanupAll);

describe('notifications', () => {
  it('a failed backup reaches the webhook (signed), Slack and email; the webhook is retried until it answers', async () => {
    hook.state.fail['backup.failed'] = 2;
    const t = await sqliteTarget('doomed');
    rmSync(t.file);
    expect((await runBackup(cp, t.id)).job.state).toBe('failed');

    const { value: delivered } = await waitFor(async () => ofEvent(hook.got, 'backup.failed')[0], {
      timeoutMs: 15_000,
      what: 'webhook delivery',
    });
    const body = JSON.parse(delivered.body);
    expect(body).toMatchObject({ event: 'backup.failed', target: 'doomed', engine: 'sqlite' });
    expect(body.message).toMatch(/ENOENT|no such file/i);
    // The signature: HMAC-SHA256(secret, `${t}.${body}`), with the timestamp in the header.
    const t0 = Number(delivered.headers['x-dbbackup-timestamp']);
    expect(Math.abs(Date.now() / 1000 - t0)).toBeLessThan(60);
    const mac = createHmac('sha256', SECRET).update(`${t0}.${delivered.body}`).digest('hex');
    expect(delivered.headers['x-dbbackup-signature']).toBe(`t=${t0},v1=${mac}`);
    expect(delivered.headers['x-dbbackup-event']).toBe('backup.failed');

    await waitFor(async () => slackWith(/Backup of doomed .* failed/).length === 1, { what: 'slack' });
    const { value: mail } = await waitFor(
      async () => smtp.mails.find((m) => /Backup of doomed/.test(m.data)),
      {
        what: 'email',
      },
    );
    expect(mail.to).toEqual(['oncall@example.test']);
    expect(mail.data).toMatch(/Subject: \[dbbackup\] Backup of doomed .* failed/);

    // The delivery log: the webhook took three attempts, the first two failed with the receiver's status.
    const log = await cp.api<{
      items: { event: string; state: string; attempts: number; lastError: string | null }[];
    }>('GET', `/api/v1/notifications/deliveries?channel=${channel['ops-hook']}&event=backup.failed`);
    expect(log.body.items).toHaveLength(1);
    expect(log.body.items[0]).toMatchObject({ state: 'delivered', attempts: 3, lastError: null });
  });

  it('successes are opt-in: only the channel that asked for them gets one', async () => {
    const t = await sqliteTarget('fine');
    expect((await runBackup(cp, t.id)).job.state).toBe('succeeded');
    await waitFor(async () => ofEvent(hook.got, 'backup.succeeded').length === 1, {
      what: 'success webhook',
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(slackWith(/fine/)).toHaveLength(0);
    expect(smtp.mails.filter((m) => /Backup of fine/.test(m.data))).toHaveLength(0);
  });

  it('tells when an agent goes offline and when it is back', async () => {
    // Counted from here: a busy machine may have flapped the agent earlier.
    const offlineBefore = ofEvent(hook.got, 'agent.offline').length;
    const onlineBefore = ofEvent(hook.got, 'agent.online').length;
    await agent.proc.kill('SIGKILL');
    await waitFor(async () => ofEvent(hook.got, 'agent.offline').length > offlineBefore, {
      timeoutMs: 15_000,
      what: 'offline',
    });
    await waitFor(async () => smtp.mails.some((m) => /is offline/.test(m.data)), { what: 'offline mail' });
    agent.restart();
    await waitFor(async () => ofEvent(hook.got, 'agent.online').length > onlineBefore, {
      timeoutMs: 15_000,
      what: 'online',
    });
    const online = JSON.parse(ofEvent(hook.got, 'agent.online').at(-1)?.body ?? '{}');
    expect(online).toMatchObject({ agentId: agent.id, title: expect.stringMatching(/back online/) });
  });

  it('POST /notifications/test sends at once and reports the outcome; a dead receiver is a failure with its reason', async () => {
    const ok = await cp.api<{ state: string }>('POST', '/api/v1/notifications/test', {
      channelId: channel['ops-slack'],
    });
    expect(ok.status).toBe(200);
    expect(ok.body.state).toBe('delivered');
    expect(slackWith(/Test message for channel ops-slack/)).toHaveLength(1);

    const dead = await cp.api<{ id: string }>('POST', '/api/v1/notifications/channels', {
      name: 'dead',
      config: { kind: 'webhook', url: 'http://127.0.0.1:9/nothing', secret: SECRET },
    });
    const r = await cp.api<{ state: string; error: string }>('POST', '/api/v1/notifications/test', {
      channelId: dead.body.id,
    });
    expect(r.body.state).toBe('failed');
    expect(r.body.error).toMatch(/fetch failed|ECONNREFUSED/);

    // A disabled channel is not tested (409), and an unknown one is 404; neither queues anything.
    await cp.api('PATCH', `/api/v1/notifications/channels/${dead.body.id}`, { enabled: false });
    const before = (
      await cp.api<{ items: unknown[] }>('GET', `/api/v1/notifications/deliveries?channel=${dead.body.id}`)
    ).body.items.length;
    expect((await cp.api('POST', '/api/v1/notifications/test', { channelId: dead.body.id })).status).toBe(
      409,
    );
    expect(
      (
        await cp.api('POST', '/api/v1/notifications/test', {
          channelId: '00000000-0000-4000-8000-000000000000',
        })
      ).status,
    ).toBe(404);
    const after = (
      await cp.api<{ items: unknown[] }>('GET', `/api/v1/notifications/deliveries?channel=${dead.body.id}`)
    ).body.items.length;
    expect(after).toBe(before);
  });

  it('never returns channel secrets, and refuses bad channels with problem+json', async () => {
    const list = await cp.api('GET', '/api/v1/notifications/channels');
    const text = JSON.stringify(list.body);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain('XXXX');
    expect(text).toContain('ops-mail');
    for (const [what, body] of [
      ['short secret', { name: 'a', config: { kind: 'webhook', url: `${hook.url}/x`, secret: 'short' } }],
      ['not http', { name: 'b', config: { kind: 'slack', url: 'ftp://example.test/x' } }],
      [
        'unknown event',
        { name: 'c', config: { kind: 'slack', url: `${hook.url}/x` }, events: ['backup.exploded'] },
      ],
      ['no recipients', { name: 'd', config: { kind: 'email', host: 'h', from: 'a@b.test', to: [] } }],
      ['unknown kind', { name: 'e', config: { kind: 'pager', url: `${hook.url}/x` } }],
    ] as const) {
      const r = await cp.api('POST', '/api/v1/notifications/channels', body);
      expect(r.status, what).toBe(422);
      expect(r.headers.get('content-type'), what).toMatch(/problem\+json/);
    }
    const badQuery = await cp.api('GET', '/api/v1/notifications/deliveries?state=lost');
    expect(badQuery.status).toBe(400);
    expect(badQuery.headers.get('content-type')).toMatch(/problem\+json/);
    expect(
      (await cp.api('PATCH', `/api/v1/notifications/channels/${channel['ops-slack']}`, { url: 'x' })).status,
    ).toBe(422);
    expect((await cp.api('PATCH', '/api/v1/notifications/channels/nope', { enabled: true })).status).toBe(
      404,
    );
    // A change naming no event, or one that does not exist, is refused and changes nothing.
    const slackBefore = (await cp.api('GET', `/api/v1/notifications/channels/${channel['ops-slack']}`)).body;
    for (const events of [[], ['backup.exploded']]) {
      const r = await cp.api('PATCH', `/api/v1/notifications/channels/${channel['ops-slack']}`, { events });
      expect(r.status, JSON.stringify(events)).toBe(422);
    }
    expect((await cp.api('GET', `/api/v1/notifications/channels/${channel['ops-slack']}`)).body).toEqual(
      slackBefore,
    );
    // The list names the events a channel can be sent, for a form to offer.
    const catalogue = list.body as { events: string[]; defaultEvents: string[] };
    expect(catalogue.events).toContain('backup.succeeded');
    expect(catalogue.defaultEvents).not.toContain('backup.succeeded');
    expect(catalogue.events).toEqual(expect.arrayContaining(catalogue.defaultEvents));
    const dup = await cp.api('POST', '/api/v1/notifications/channels', {
      name: 'ops-slack',
      config: { kind: 'slack', url: `${slack.url}/x` },
    });
    expect(dup.status).toBe(409);
  });
});
