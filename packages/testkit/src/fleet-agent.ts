import { type KeyObject, randomUUID } from 'node:crypto';
import {
  agentConnectUrl,
  Backoff,
  encodeAgentMessage,
  PROTOCOL_MAJOR,
  PROTOCOL_MINOR,
  retryAfterMs,
} from '@dbbackup/proto';
import { SignJWT } from 'jose';
import WebSocket from 'ws';

/** An enrolled simulated agent: its id, the cluster audience and its Ed25519 signing key. */
export interface SimIdentity {
  agentId: string;
  audience: string;
  key: KeyObject;
}

/** What the simulated agents record, shared by the whole fleet. */
export class FleetRecorder {
  /** Heartbeat send → ack latencies (ms), while `measuring`. */
  heartbeatAcks: number[] = [];
  measuring = false;
  /** When each connection attempt (an upgrade request) was made. */
  attempts: number[] = [];
  /** Attempt → welcome (ms) of each admitted connection. */
  handshakes: number[] = [];
  /** Attempts refused with 503 (busy admitting; Retry-After). */
  refused = 0;
  /** Connections that were welcomed and then closed (not by the fleet stopping). */
  drops = 0;
  /** Per command id: when the agent received it, and when its success was acknowledged. */
  received = new Map<string, number>();
  succeeded = new Map<string, number>();
  #waiters = new Set<() => void>();

  changed() {
    for (const w of this.#waiters) w();
  }

  /** Resolve when `done()` holds (checked on every change), or reject after `timeoutMs`. */
  until(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!done()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
    });
  }
}

const BACKOFF = { baseMs: 1000, capMs: 60_000, stableAfterMs: 30_000 };

/**
 * One simulated agent at the protocol level: the real connect token (EdDSA, one-minute
 * lifetime, fresh jti), hello, heartbeats at the interval the welcome names, the agent's
 * application pings, the agent's backoff and its reading of Retry-After (both from proto),
 * and a `ping` command run to success with command.started/succeeded events. No store:
 * what it holds lives in memory.
 */
export class SimAgent {
  ready = false;
  /** The control-plane URL of the current (or last) connection. */
  url = '';
  #ws: WebSocket | undefined;
  #stopped = true;
  #seq = 1;
  #timers = new Set<NodeJS.Timeout>();
  #backoff = new Backoff(BACKOFF);
  #retryAfter: number | undefined;
  #connectedAt = 0;
  #attemptAt = 0;
  #lastInbound = 0;
  #beats: number[] = [];
  /** Sequence number of a command's succeeded event → the command id. */
  #awaiting = new Map<number, string>();
  readonly #facts: Record<string, unknown>;

  constructor(
    readonly id: SimIdentity,
    readonly index: number,
    readonly rec: FleetRecorder,
    /** The control-plane base URL for the next attempt (one, or one of several replicas). */
    readonly pickUrl: () => string,
  ) {
    this.#facts = {
      hostname: `sim-${index}`,
      os: 'linux',
      arch: 'x64',
      agentVersion: 'fleet-sim',
      uptimeSeconds: 0,
      hostUptimeSeconds: 0,
      load: [0, 0, 0],
      stateDirFreeBytes: 10_000_000_000,
      tools: [],
      queueDepth: 0,
      outboxDepth: 0,
    };
  }

  start(delayMs = 0) {
    this.#stopped = false;
    this.#after(delayMs, () => void this.#connect());
  }

  stop() {
    this.#stopped = true;
    this.#clear();
    this.ready = false;
    this.#ws?.terminate();
    this.#ws = undefined;
  }

  #after(ms: number, fn: () => void, repeat = false) {
    const t = repeat ? setInterval(fn, ms) : setTimeout(fn, ms);
    this.#timers.add(t);
    return t;
  }

  #clear() {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  #send(type: Parameters<typeof encodeAgentMessage>[0], payload: unknown) {
    if (this.#ws?.readyState === WebSocket.OPEN) this.#ws.send(encodeAgentMessage(type, payload as never));
  }

  async #token() {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({})
      .setProtectedHeader({ alg: 'EdDSA' })
      .setSubject(this.id.agentId)
      .setAudience(this.id.audience)
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .setJti(randomUUID())
      .sign(this.id.key);
  }

  async #connect() {
    if (this.#stopped) return;
    this.#attemptAt = Date.now();
    this.rec.attempts.push(this.#attemptAt);
    this.url = this.pickUrl();
    const ws = new WebSocket(agentConnectUrl(this.url), {
      headers: { authorization: `Bearer ${await this.#token()}` },
      handshakeTimeout: 15_000,
    });
    this.#ws = ws;
    ws.on('unexpected-response', (_req, res) => {
      if (res.statusCode === 503) this.rec.refused++;
      const ra = res.headers['retry-after'];
      this.#retryAfter = retryAfterMs(Array.isArray(ra) ? ra[0] : ra);
      res.resume();
      ws.terminate();
    });
    ws.on('error', () => {});
    ws.on('open', () => {
      this.#lastInbound = Date.now();
      this.#send('hello', {
        agentId: this.id.agentId,
        agentVersion: 'fleet-sim',
        protocol: { major: PROTOCOL_MAJOR, minor: PROTOCOL_MINOR },
        eventsAckedUpTo: this.#seq - 1,
        recentCommandIds: [],
      });
    });
    ws.on('message', (d) => this.#onMessage(ws, d.toString()));
    ws.on('close', () => this.#onClose(ws));
  }

  #onClose(ws: WebSocket) {
    if (this.#ws !== ws) return;
    this.#ws = undefined;
    this.#clear();
    if (this.ready) this.rec.drops += this.#stopped ? 0 : 1;
    this.ready = false;
    this.#beats = [];
    this.#awaiting.clear();
    this.rec.changed();
    if (this.#stopped) return;
    this.#backoff.connectionLasted(this.#connectedAt ? Date.now() - this.#connectedAt : 0);
    this.#connectedAt = 0;
    const asked = this.#retryAfter;
    this.#retryAfter = undefined;
    this.#after(Math.max(this.#backoff.next(), asked ?? 0), () => void this.#connect());
  }

  #onMessage(ws: WebSocket, text: string) {
    this.#lastInbound = Date.now();
    const m = JSON.parse(text) as { type: string; payload: Record<string, unknown> };
    switch (m.type) {
      case 'welcome':
        return this.#welcomed(ws, m.payload);
      case 'heartbeat.ack': {
        const sent = this.#beats.shift();
        if (sent !== undefined && this.rec.measuring) this.rec.heartbeatAcks.push(Date.now() - sent);
        return;
      }
      case 'ping':
        return this.#send('pong', { t: m.payload.t });
      case 'command':
        return this.#command(m.payload);
      case 'event.ack':
        return this.#acked(Number(m.payload.upTo));
    }
  }

  #welcomed(ws: WebSocket, p: Record<string, unknown>) {
    this.#seq = Math.max(this.#seq, Number(p.eventsAckedUpTo) + 1);
    this.ready = true;
    this.#connectedAt = Date.now();
    this.rec.handshakes.push(this.#connectedAt - this.#attemptAt);
    this.rec.changed();
    const hb = Number(p.heartbeatIntervalMs);
    const beat = () => {
      this.#beats.push(Date.now());
      this.#send('heartbeat', { facts: this.#facts });
    };
    beat();
    this.#after(hb, beat, true);
    const pingEvery = Math.max(50, Math.floor(hb / 2));
    this.#after(
      pingEvery,
      () => {
        // As the agent does: two silent ping intervals end the link.
        if (Date.now() - this.#lastInbound > 2 * pingEvery) ws.terminate();
        else this.#send('ping', { t: Date.now() });
      },
      true,
    );
  }

  #command(p: Record<string, unknown>) {
    const commandId = p.commandId as string;
    const kind = (p.command as { kind: string }).kind;
    this.rec.received.set(commandId, Date.now());
    this.rec.changed();
    this.#send('command.ack', { commandId });
    const result =
      kind === 'ping'
        ? { agentTime: new Date().toISOString(), echo: (p.command as { echo?: string }).echo }
        : { tools: [], servers: [] };
    const at = new Date().toISOString();
    this.#send('event', { seq: this.#seq++, at, body: { type: 'command.started', commandId } });
    this.#awaiting.set(this.#seq, commandId);
    this.#send('event', { seq: this.#seq++, at, body: { type: 'command.succeeded', commandId, result } });
  }

  #acked(upTo: number) {
    for (const [seq, commandId] of this.#awaiting) {
      if (seq > upTo) continue;
      this.#awaiting.delete(seq);
      this.rec.succeeded.set(commandId, Date.now());
      this.rec.changed();
    }
  }
}
