import type { Logger } from '@dbbackup/logger';
import {
  type AgentMessage,
  type AgentPayload,
  CloseCode,
  canonicalJson,
  decodeAgentMessage,
  encodeServerMessage,
  PROTOCOL_MAJOR,
  PROTOCOL_MINOR,
  type ServerMessageType,
  type ServerPayload,
} from '@dbbackup/proto';
import { sql } from 'kysely';
import type { WebSocket } from 'ws';
import { json } from '../db/database.js';
import { applyAgentEvent } from '../services/agent-events.js';
import { setAgentStatus } from '../services/agent-status.js';
import { type HydrationDeps, hydrateCommand } from '../services/command-hydration.js';
import {
  createCommand,
  markDelivered,
  pendingCommands,
  toWireCommand,
  transition,
} from '../services/command-state.js';
import type { Liveness } from './liveness.js';

export interface SessionDeps extends HydrationDeps {
  heartbeatIntervalMs: number;
  liveness: Liveness;
  /** Called once the welcome is sent (the gateway admits the next handshake). */
  welcomed?: () => void;
  /** Whether a disconnect is routine (the gateway is shutting down) and logged at debug. */
  quiet?: () => boolean;
}

/** Facts that did not change are written again after this long (uptime and load stay roughly current). */
const FACTS_REFRESH_MS = 5 * 60_000;

const HELLO_TIMEOUT_MS = 10_000;
/** Frames received and not yet handled; an agent keeps at most 100 events unacknowledged. */
const MAX_PENDING_FRAMES = 256;
/** Sustained inbound frames per second, and the burst above it, before the session is closed. */
const RATE_PER_SECOND = 200;
const RATE_BURST = 1000;

/**
 * One agent's WebSocket on this replica. Messages are handled strictly one at a
 * time, in arrival order, so events apply in sequence. The first message must
 * be `hello`; a frame that does not decode closes this connection (and nothing
 * else) with the decoder's reason.
 */
export class AgentSession {
  readonly agentId: string;
  readonly #ws: WebSocket;
  readonly #deps: SessionDeps;
  readonly #log: Logger;
  #ready = false;
  #closed = false;
  #lastInbound = Date.now();
  #queue: Promise<void> = Promise.resolve();
  /** Set once handling a frame failed: every later frame is ignored, so nothing applies out of order. */
  #failed = false;
  #pending = 0;
  #tokens = RATE_BURST;
  #tokensAt = Date.now();
  /** The last event sequence number this session applied or was told of (undefined before the first event). */
  #seq: number | undefined;
  /** The facts last written (without clocks and load), and when. */
  #facts: string | undefined;
  #factsAt = 0;
  #timer: NodeJS.Timeout;
  #onClosed: (s: AgentSession) => void;

  constructor(agentId: string, ws: WebSocket, deps: SessionDeps, onClosed: (s: AgentSession) => void) {
    this.agentId = agentId;
    this.#ws = ws;
    this.#deps = deps;
    this.#onClosed = onClosed;
    this.#log = deps.log.child({ agentId });
    const helloDeadline = Date.now() + HELLO_TIMEOUT_MS;
    const hb = deps.heartbeatIntervalMs;
    this.#timer = setInterval(
      () => {
        if (!this.#ready && Date.now() > helloDeadline)
          this.close(CloseCode.policyViolation, 'hello expected');
        else if (Date.now() - this.#lastInbound > 2 * hb) {
          this.#log.warn('two heartbeats missed; dropping connection');
          // The peer is not answering, so a close handshake would only wait: drop the TCP connection.
          clearInterval(this.#timer);
          this.#ws.terminate();
        }
      },
      Math.max(50, Math.floor(hb / 4)),
    );
    ws.on('message', (data, isBinary) => {
      if (this.#failed || this.#closed) return;
      this.#lastInbound = Date.now();
      if (!this.#admit()) return;
      const decoded = decodeAgentMessage(isBinary ? data : data.toString());
      if (!decoded.ok) {
        this.#log.warn({ code: decoded.code, reason: decoded.reason }, 'closing on bad frame');
        this.#fail(decoded.code, decoded.reason);
        return;
      }
      this.#pending++;
      this.#queue = this.#queue
        .then(() => (this.#failed ? undefined : this.#handle(decoded.message)))
        .catch((err) => {
          this.#log.error({ err }, 'failed to handle agent message');
          this.#fail(1011, 'server error handling message');
        })
        .finally(() => {
          this.#pending--;
        });
    });
    ws.on('error', (err) => this.#log.warn({ err }, 'agent socket error'));
    ws.on('close', (code, reason) => {
      this.#closed = true;
      clearInterval(this.#timer);
      // A control plane shutting down closes every socket: one summary line, not one per agent.
      this.#log[this.#deps.quiet?.() ? 'debug' : 'info'](
        { code, reason: reason.toString() },
        'agent disconnected',
      );
      this.#onClosed(this);
    });
  }

  /** Backpressure: a bounded queue of unhandled frames and a token-bucket rate, each with a reasoned close. */
  #admit(): boolean {
    const now = Date.now();
    this.#tokens = Math.min(RATE_BURST, this.#tokens + ((now - this.#tokensAt) / 1000) * RATE_PER_SECOND);
    this.#tokensAt = now;
    if (this.#tokens < 1) {
      this.#log.warn('closing: inbound message rate exceeded');
      this.#fail(CloseCode.policyViolation, `more than ${RATE_PER_SECOND} messages per second`);
      return false;
    }
    this.#tokens -= 1;
    if (this.#pending >= MAX_PENDING_FRAMES) {
      this.#log.warn({ pending: this.#pending }, 'closing: too many messages waiting');
      this.#fail(CloseCode.policyViolation, `more than ${MAX_PENDING_FRAMES} messages waiting to be handled`);
      return false;
    }
    return true;
  }

  /** Stop handling this session's frames (those queued included) and close it. */
  #fail(code: number, reason: string) {
    this.#failed = true;
    this.close(code, reason);
  }

  get ready() {
    return this.#ready;
  }

  send<T extends ServerMessageType>(type: T, payload: ServerPayload<T>) {
    if (this.#closed || this.#ws.readyState !== this.#ws.OPEN) return false;
    this.#ws.send(encodeServerMessage(type, payload));
    return true;
  }

  close(code: number, reason: string) {
    if (this.#closed) return;
    try {
      this.#ws.close(code, reason);
    } catch {
      this.#ws.terminate();
    }
  }

  /** Push every pending command, in order; serialised with message handling. */
  dispatchPending(): Promise<void> {
    this.#queue = this.#queue
      .then(() => this.#dispatch())
      .catch((err) => {
        this.#log.error({ err }, 'dispatch failed');
      });
    return this.#queue;
  }

  async #dispatch() {
    if (!this.#ready || this.#closed) return;
    const { db } = this.#deps;
    for (const row of await pendingCommands(db, this.agentId)) {
      const sent = this.send('command', {
        commandId: row.id,
        command: await hydrateCommand(this.#deps, this.agentId, toWireCommand(row)),
        expiresAt: new Date(row.expires_at).toISOString(),
      });
      if (!sent) return;
      await markDelivered(db, row.id);
      this.#log.debug({ commandId: row.id, kind: row.kind }, 'command delivered');
    }
  }

  async #handle(msg: AgentMessage) {
    if (!this.#ready && msg.type !== 'hello') {
      this.close(CloseCode.policyViolation, 'hello expected first');
      return;
    }
    switch (msg.type) {
      case 'hello':
        return this.#hello(msg.payload);
      case 'heartbeat':
        return this.#heartbeat(msg.payload);
      case 'command.ack':
        await transition(this.#deps.db, msg.payload.commandId, 'acknowledged', { agentId: this.agentId });
        return;
      case 'event':
        return this.#event(msg.payload);
      case 'ping':
        this.send('pong', { t: msg.payload.t });
        return;
      case 'pong':
        return;
    }
  }

  async #hello(p: AgentPayload<'hello'>) {
    const { db } = this.#deps;
    if (this.#ready) return this.close(CloseCode.policyViolation, 'duplicate hello');
    if (p.agentId !== this.agentId)
      return this.close(CloseCode.policyViolation, 'hello agentId does not match token');
    if (p.protocol.major !== PROTOCOL_MAJOR) {
      return this.close(
        CloseCode.unsupportedVersion,
        `unsupported protocol ${p.protocol.major}.${p.protocol.minor}; server speaks ${PROTOCOL_MAJOR}.x`,
      );
    }
    const agent = await db
      .updateTable('agents')
      .set({ last_seen_at: new Date(), agent_version: p.agentVersion })
      .where('id', '=', this.agentId)
      .returning([
        'last_event_seq',
        'config_version',
        'status',
        'facts',
        // Whether there is anything to push: most reconnects find nothing, and skip the query.
        sql<boolean>`exists (select 1 from commands c where c.agent_id = agents.id and c.state in ('queued', 'delivered'))`.as(
          'has_pending',
        ),
      ])
      .executeTakeFirst();
    if (!agent || agent.status === 'revoked') return this.close(CloseCode.revoked, 'agent revoked');
    this.#ready = true;
    this.send('welcome', {
      serverTime: new Date().toISOString(),
      heartbeatIntervalMs: this.#deps.heartbeatIntervalMs,
      configVersion: agent.config_version,
      eventsAckedUpTo: agent.last_event_seq,
      protocol: { major: PROTOCOL_MAJOR, minor: PROTOCOL_MINOR },
    });
    // An agent already online (a reconnect after a restart) costs no transaction here.
    if (agent.status !== 'online') await setAgentStatus(db, this.agentId, 'online', 'connected');
    this.#facts = agent.facts ? stableFacts(agent.facts as AgentPayload<'heartbeat'>['facts']) : undefined;
    this.#factsAt = Date.now();
    this.#deps.welcomed?.();
    this.#log.info({ agentVersion: p.agentVersion, protocol: p.protocol }, 'agent online');
    // An agent behind on its configuration (a new state directory, or a sync it never got) gets one.
    if (p.configVersion !== undefined && p.configVersion < agent.config_version)
      await this.#queueConfigSync(agent.config_version);
    // A command made from here on is pushed by its signal (queued behind this hello).
    else if (!agent.has_pending) return;
    await this.#dispatch();
  }

  async #queueConfigSync(version: number) {
    const { db } = this.#deps;
    const pending = await db
      .selectFrom('commands')
      .select('id')
      .where('agent_id', '=', this.agentId)
      .where('kind', '=', 'config.sync')
      .where('state', 'in', ['queued', 'delivered'])
      .executeTakeFirst();
    if (!pending)
      await createCommand(db, {
        agentId: this.agentId,
        command: { kind: 'config.sync', version },
        ttlSeconds: 90 * 86_400,
        createdBy: null,
      });
  }

  /**
   * A heartbeat: the agent is seen (written in the next liveness batch) and answered at once.
   * Its facts are written only when something but the clocks and the load changed, or every
   * FACTS_REFRESH_MS, so an idle fleet's heartbeats cost the database next to nothing.
   */
  async #heartbeat(p: AgentPayload<'heartbeat'>) {
    this.#deps.liveness.seen(this.agentId);
    this.send('heartbeat.ack', { serverTime: new Date().toISOString() });
    const stable = stableFacts(p.facts);
    if (stable === this.#facts && Date.now() - this.#factsAt < FACTS_REFRESH_MS) return;
    await this.#deps.db
      .updateTable('agents')
      .set({ facts: json(p.facts), hostname: p.facts.hostname })
      .where('id', '=', this.agentId)
      .execute();
    this.#facts = stable;
    this.#factsAt = Date.now();
  }

  async #event(event: AgentPayload<'event'>) {
    const seq = event.seq;
    // Within one session events arrive in order with no holes: a hole means one was
    // skipped, and applying past it would lose it. Close; the agent resends from the mark.
    if (this.#seq !== undefined && seq > this.#seq + 1) {
      this.#log.warn({ expected: this.#seq + 1, got: seq }, 'closing: event sequence gap in session');
      return this.#fail(CloseCode.policyViolation, `event ${seq} sent before event ${this.#seq + 1}`);
    }
    const r = await applyAgentEvent(this.#deps.db, this.agentId, event, {
      onGap: (expected, got) =>
        this.#log.warn({ expected, got }, 'event sequence gap: events acknowledged earlier were lost here'),
      onRejected: (rejectedSeq, type, reason) =>
        this.#log.warn({ seq: rejectedSeq, type, reason }, 'agent event rejected'),
    });
    this.#seq = Math.max(this.#seq ?? 0, r.upTo);
    this.send('event.ack', { upTo: r.upTo });
  }
}

/** Facts without the clocks and the load, in one canonical form (the stored jsonb reorders keys). */
function stableFacts(f: AgentPayload<'heartbeat'>['facts']): string {
  const { uptimeSeconds: _u, hostUptimeSeconds: _h, load: _l, ...lasting } = f;
  return canonicalJson(lasting);
}
