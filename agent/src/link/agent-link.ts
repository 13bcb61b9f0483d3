import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import {
  type AgentMessageType,
  type AgentPayload,
  agentConnectUrl,
  Backoff,
  CloseCode,
  decodeServerMessage,
  encodeAgentMessage,
  MAX_FRAME_BYTES,
  PROTOCOL_MAJOR,
  PROTOCOL_MINOR,
  retryAfterMs,
  type ServerMessage,
} from '@dbbackup/proto';
import WebSocket from 'ws';
import { connectToken } from '../identity.js';
import type { LinkEvents, LinkOptions } from './link-options.js';
import type { LinkState } from './link-state.js';
import { describeProxy, proxyAgentFor } from './proxy.js';

export type { LinkOptions } from './link-options.js';
export type { LinkState } from './link-state.js';

/**
 * The agent's one outbound connection, as an explicit state machine:
 *
 *   idle ──start──▶ connecting ──open──▶ handshaking ──welcome──▶ ready
 *     ▲                 │                    │                      │
 *     │              failed               closed                 closed
 *     │                 ▼                    ▼                      ▼
 *     └──────────── backoff ◀───────────────────────────────────────┘
 *   any ──stop──▶ stopping ──▶ stopped            (refused as revoked ──▶ stopped)
 */
const ALLOWED: Record<LinkState, LinkState[]> = {
  idle: ['connecting', 'stopped'],
  connecting: ['handshaking', 'backoff', 'stopping', 'stopped'],
  handshaking: ['ready', 'backoff', 'stopping', 'stopped'],
  ready: ['backoff', 'stopping', 'stopped'],
  backoff: ['connecting', 'stopping', 'stopped'],
  stopping: ['stopped'],
  stopped: [],
};

const OUTBOX_WINDOW = 100;

export class AgentLink extends EventEmitter<LinkEvents> {
  readonly #o: LinkOptions;
  readonly #backoff: Backoff;
  #state: LinkState = 'idle';
  #ws: WebSocket | undefined;
  #timers = new Set<NodeJS.Timeout>();
  #lastInbound = 0;
  #connectedAt = 0;
  #heartbeatMs: number;
  #sentUpTo = 0;
  #flushing = false;
  /** The wait the control plane asked for in its last refusal (Retry-After), if any. */
  #retryAfter: number | undefined;
  #flushAgain = false;

  constructor(o: LinkOptions) {
    super();
    this.#o = o;
    this.#heartbeatMs = o.heartbeatIntervalMs;
    this.#backoff = new Backoff({
      baseMs: o.backoffBaseMs,
      capMs: o.backoffCapMs,
      stableAfterMs: o.stableAfterMs,
    });
  }

  get state() {
    return this.#state;
  }

  #to(next: LinkState) {
    if (!ALLOWED[this.#state].includes(next)) {
      this.#o.log.debug({ from: this.#state, to: next }, 'ignored link transition');
      return false;
    }
    this.#state = next;
    this.emit('state', next);
    return true;
  }

  #timer(ms: number, fn: () => void, repeat = false) {
    const t = repeat
      ? setInterval(fn, ms)
      : setTimeout(() => {
          this.#timers.delete(t);
          fn();
        }, ms);
    this.#timers.add(t);
    return t;
  }

  #clearTimers() {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  start() {
    if (this.#state !== 'idle') return;
    const url = this.#url();
    const proxy = describeProxy(url);
    this.#o.log.info({ url, proxy: proxy ?? 'none' }, 'starting link');
    this.#connect();
  }

  #url() {
    return agentConnectUrl(this.#o.identity.server);
  }

  async #connect() {
    if (!this.#to('connecting')) return;
    const url = this.#url();
    let token: string;
    let agent: Awaited<ReturnType<typeof proxyAgentFor>>;
    try {
      token = await connectToken(this.#o.identity);
      agent = await proxyAgentFor(url, this.#o.ca);
    } catch (err) {
      this.#o.log.error({ err }, 'cannot prepare the connection (connect token or proxy)');
      return this.#retry();
    }
    if (this.#state !== 'connecting') return;
    const ws = new WebSocket(url, {
      headers: { authorization: `Bearer ${token}` },
      agent,
      ...(this.#o.ca ? { ca: this.#o.ca } : {}),
      maxPayload: MAX_FRAME_BYTES,
      handshakeTimeout: 15_000,
    });
    this.#ws = ws;
    ws.on('unexpected-response', (_req, res) => this.#refused(ws, res));
    ws.on('open', () => this.#opened(ws));
    ws.on('message', (data, isBinary) => this.#message(ws, isBinary ? data : data.toString()));
    ws.on('error', (err) => this.#o.log.warn({ err: { message: err.message } }, 'link error'));
    ws.on('close', (code, reason) => this.#closed(ws, code, reason.toString()));
  }

  #refused(ws: WebSocket, res: IncomingMessage) {
    const retryAfter = res.headers['retry-after'];
    this.#retryAfter = retryAfterMs(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => {
      let problem: { type?: string; detail?: string; serverTime?: string } = {};
      try {
        problem = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {}
      const type = String(problem.type ?? '')
        .split('/')
        .pop();
      const detail = problem.detail ?? res.statusMessage;
      if (type === 'agent-revoked') {
        this.#o.log.error(
          { status: res.statusCode, detail },
          'this agent has been revoked by the control plane; stopping',
        );
        this.#clearTimers();
        this.#to('stopped');
        this.emit('revoked', detail ?? 'revoked');
      } else if (type === 'clock-skew' || type === 'token-expired') {
        const serverTime = problem.serverTime ?? res.headers.date;
        const skewS = serverTime
          ? Math.round((Date.now() - new Date(serverTime).getTime()) / 1000)
          : undefined;
        this.#o.log.error(
          { status: res.statusCode, detail, agentClockAheadSeconds: skewS },
          'connection refused: clock skew; fix time sync (NTP) on this host',
        );
      } else {
        this.#o.log.warn({ status: res.statusCode, detail }, 'connection refused by control plane');
      }
      ws.terminate();
    });
    res.on('error', () => ws.terminate());
  }

  #opened(ws: WebSocket) {
    if (!this.#to('handshaking')) return ws.terminate();
    this.#lastInbound = Date.now();
    this.#connectedAt = Date.now();
    void (async () => {
      this.#send('hello', {
        agentId: this.#o.identity.agentId,
        agentVersion: this.#o.agentVersion,
        protocol: { major: PROTOCOL_MAJOR, minor: PROTOCOL_MINOR },
        eventsAckedUpTo: await this.#o.store.eventsAckedUpTo(),
        recentCommandIds: await this.#o.store.recentCommandIds(100),
        configVersion: JSON.parse((await this.#o.store.getMeta('config')) ?? '{"version":0}').version ?? 0,
      });
    })().catch((err) => {
      // The state directory could not be read: try again on a fresh connection.
      this.#o.log.error({ err }, 'could not say hello');
      ws.terminate();
    });
    this.#timer(15_000, () => {
      if (this.#state === 'handshaking' && this.#ws === ws) {
        this.#o.log.warn('no welcome within 15 s; reconnecting');
        ws.terminate();
      }
    });
  }

  #message(ws: WebSocket, raw: unknown) {
    if (ws !== this.#ws) return;
    this.#lastInbound = Date.now();
    const d = decodeServerMessage(raw);
    if (!d.ok) {
      this.#o.log.warn({ code: d.code, reason: d.reason }, 'bad frame from control plane; closing');
      ws.close(d.code, d.reason);
      return;
    }
    void this.#handle(d.message).catch((err) =>
      this.#o.log.error({ err }, 'failed to handle control-plane message'),
    );
  }

  async #handle(m: ServerMessage) {
    switch (m.type) {
      case 'welcome': {
        if (this.#state !== 'handshaking') return;
        const skewMs = Date.now() - new Date(m.payload.serverTime).getTime();
        if (Math.abs(skewMs) > 2000)
          this.#o.log.warn({ agentClockAheadMs: skewMs }, 'clock differs from the control plane');
        this.#heartbeatMs = m.payload.heartbeatIntervalMs;
        // Anything the control plane already applied can go; new events number above it.
        await this.#o.store.ackEvents(m.payload.eventsAckedUpTo);
        this.#sentUpTo = m.payload.eventsAckedUpTo;
        this.#to('ready');
        await this.#o.store.setMeta('last_connected_at', new Date().toISOString());
        this.#o.log.info({ heartbeatIntervalMs: this.#heartbeatMs }, 'connected to control plane');
        this.#startBeating();
        void this.flush();
        return;
      }
      case 'command':
        this.emit('command', m.payload);
        return;
      case 'event.ack':
        await this.#o.store.ackEvents(m.payload.upTo);
        void this.flush();
        return;
      case 'ping':
        this.#send('pong', { t: m.payload.t });
        return;
      case 'pong':
      case 'heartbeat.ack':
        return;
    }
  }

  #startBeating() {
    const ws = this.#ws;
    const beat = async () => {
      if (this.#state !== 'ready' || this.#ws !== ws) return;
      try {
        this.#send('heartbeat', { facts: await this.#o.collectFacts() });
      } catch (err) {
        this.#o.log.warn({ err }, 'heartbeat failed');
      }
    };
    void beat();
    this.#timer(this.#heartbeatMs, () => void beat(), true);
    // Application-level ping: a half-open connection shows as silence; two intervals of it end the link.
    const pingEvery = Math.max(50, Math.floor(this.#heartbeatMs / 2));
    this.#timer(
      pingEvery,
      () => {
        if (this.#ws !== ws || this.#state !== 'ready') return;
        if (Date.now() - this.#lastInbound > 2 * pingEvery) {
          this.#o.log.warn(
            { silentMs: Date.now() - this.#lastInbound },
            'control plane silent for two ping intervals; reconnecting',
          );
          ws?.terminate();
          return;
        }
        this.#send('ping', { t: Date.now() });
      },
      true,
    );
  }

  #send<T extends AgentMessageType>(type: T, payload: AgentPayload<T>): boolean {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(encodeAgentMessage(type, payload));
    return true;
  }

  /** Acknowledge a command the agent has recorded. */
  ack(commandId: string) {
    if (this.#state === 'ready' || this.#state === 'handshaking') this.#send('command.ack', { commandId });
  }

  /** Send outbox events the control plane has not seen, in order, up to a window of unacknowledged ones. */
  async flush(): Promise<void> {
    if (this.#flushing) {
      this.#flushAgain = true;
      return;
    }
    this.#flushing = true;
    try {
      do {
        this.#flushAgain = false;
        if (this.#state !== 'ready' && this.#state !== 'stopping') return;
        const acked = await this.#o.store.eventsAckedUpTo();
        const from = Math.max(this.#sentUpTo, acked);
        if (from - acked >= OUTBOX_WINDOW) return;
        const events = await this.#o.store.pendingEvents(from, OUTBOX_WINDOW - (from - acked));
        let sent = 0;
        for (const e of events) {
          if (!this.#send('event', e)) return;
          this.#sentUpTo = e.seq;
          if (this.#o.crashDuringReplay && events.length >= 8 && ++sent === 5)
            process.kill(process.pid, 'SIGKILL');
        }
      } while (this.#flushAgain);
    } finally {
      this.#flushing = false;
    }
  }

  #closed(ws: WebSocket, code: number, reason: string) {
    if (ws !== this.#ws) return;
    this.#ws = undefined;
    this.#clearTimers();
    const lasted = this.#connectedAt ? Date.now() - this.#connectedAt : 0;
    this.#connectedAt = 0;
    if (this.#state === 'stopping' || this.#state === 'stopped') {
      this.#to('stopped');
      return;
    }
    if (code === CloseCode.revoked) {
      this.#o.log.error({ code, reason }, 'this agent has been revoked; stopping');
      this.#to('stopped');
      this.emit('revoked', reason);
      return;
    }
    this.#o.log.info({ code, reason, lastedMs: lasted }, 'link closed');
    this.#backoff.connectionLasted(lasted);
    this.#retry();
  }

  #retry() {
    if (!this.#to('backoff')) return;
    // A control plane that asked for a wait (503 with Retry-After while it admits a crowd) gets it.
    const asked = this.#retryAfter;
    this.#retryAfter = undefined;
    const delay = Math.max(this.#backoff.next(), asked ?? 0);
    this.#o.log.info(
      { delayMs: delay, attempt: this.#backoff.attempt, retryAfterMs: asked },
      'reconnecting after backoff',
    );
    this.#timer(delay, () => void this.#connect());
  }

  /** Flush what the outbox holds (bounded by `flushMs`), then close with 1001. */
  async stop(flushMs = 5000): Promise<void> {
    if (this.#state === 'stopped') return;
    const wasReady = this.#state === 'ready';
    this.#to('stopping');
    this.#clearTimers();
    const ws = this.#ws;
    if (wasReady && ws) {
      const open = () => ws.readyState === WebSocket.OPEN;
      const deadline = Date.now() + flushMs;
      await this.flush();
      while (Date.now() < deadline && open() && (await this.#o.store.outboxDepth()) > 0) {
        await new Promise((r) => setTimeout(r, 50));
        await this.flush();
      }
    }
    if (ws && ws.readyState === WebSocket.OPEN) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          ws.terminate();
          resolve();
        }, 2000);
        ws.once('close', () => {
          clearTimeout(t);
          resolve();
        });
        ws.close(CloseCode.goingAway, 'agent shutting down');
      });
    } else {
      ws?.terminate();
    }
    this.#ws = undefined;
    this.#to('stopped');
  }
}
