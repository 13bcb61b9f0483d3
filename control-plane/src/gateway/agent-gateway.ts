import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '@dbbackup/logger';
import { AGENT_CONNECT_PATH, CloseCode, MAX_FRAME_BYTES } from '@dbbackup/proto';
import { WebSocketServer } from 'ws';
import type { KekSource } from '../crypto/key-encryption-key.js';
import type { SecretBox } from '../crypto/secret-box.js';
import type { Db } from '../db/database.js';
import { ProblemError, problemBody } from '../problem.js';
import { setAgentStatus } from '../services/agent-status.js';
import { Admission } from './admission.js';
import { type AgentAuthOptions, authenticateAgent } from './agent-auth.js';
import { AgentSession } from './agent-session.js';
import { Liveness } from './liveness.js';

export interface GatewayOptions extends AgentAuthOptions {
  log: Logger;
  heartbeatIntervalMs: number;
  db: Db;
  box: SecretBox;
  kek: KekSource;
  /** Handshakes (authentication to welcome) admitted at once. */
  maxHandshakes?: number;
  /** Handshakes that may wait in line for a slot; more are answered 503 with Retry-After. */
  admissionQueue?: number;
}

/**
 * The agent WebSocket endpoint, on the HTTP server's own port. Authentication
 * happens at the HTTP upgrade: a bad token is answered with a 401
 * problem+json response and no socket is opened.
 */
export class AgentGateway {
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES });
  readonly #sessions = new Map<string, AgentSession>();
  readonly #o: GatewayOptions;
  readonly #liveness: Liveness;
  #closing = false;
  /** Agent connections between the upgrade request and their welcome. */
  readonly #admission: Admission;

  constructor(o: GatewayOptions) {
    this.#o = o;
    this.#admission = new Admission(o.maxHandshakes ?? 64, o.admissionQueue ?? 4096);
    this.#liveness = new Liveness(
      o.db,
      o.log,
      Math.min(1000, Math.max(50, Math.floor(o.heartbeatIntervalMs / 4))),
      (agentId) => this.#sessions.has(agentId),
    );
  }

  attach(server: Server) {
    server.on('upgrade', (req, socket, head) => {
      socket.on('error', () => {});
      void this.#upgrade(req, socket, head);
    });
  }

  get connectedAgentIds(): string[] {
    return [...this.#sessions.keys()];
  }

  session(agentId: string): AgentSession | undefined {
    return this.#sessions.get(agentId);
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer) {
    const { pathname } = new URL(req.url ?? '/', 'http://x');
    if (pathname !== AGENT_CONNECT_PATH)
      return refuse(socket, new ProblemError(404, 'Not Found', 'no WebSocket here'));
    if (this.#closing) return refuse(socket, new ProblemError(503, 'Service Unavailable', 'shutting down'));
    // A fleet reconnecting at once (a restart) is admitted a bounded number at a time; a line waits,
    // and beyond it agents are told when to come back (Retry-After), which they honour.
    const entry = await this.#admission.enter(socket);
    if ('gone' in entry) return;
    if ('retryAfterSeconds' in entry)
      return refuse(
        socket,
        new ProblemError(503, 'Service Unavailable', 'busy admitting agents; retry'),
        entry.retryAfterSeconds,
      );
    try {
      await this.#admit(req, socket, head, entry.release);
    } catch (err) {
      entry.release();
      throw err;
    }
  }

  async #admit(req: IncomingMessage, socket: Duplex, head: Buffer, done: () => void) {
    let agentId: string;
    try {
      agentId = await authenticateAgent(req.headers.authorization, this.#o);
    } catch (err) {
      if (err instanceof ProblemError) {
        this.#o.log.warn(
          { reason: err.message, type: err.type, remote: req.socket.remoteAddress },
          'agent connect refused',
        );
        done();
        return refuse(socket, err);
      }
      this.#o.log.error({ err }, 'agent authentication failed');
      done();
      return refuse(
        socket,
        new ProblemError(503, 'Service Unavailable', 'cannot authenticate now; retry'),
        5,
      );
    }
    // The slot is freed when the session has sent its welcome, or closed before that.
    socket.once('close', done);
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const previous = this.#sessions.get(agentId);
      const session = new AgentSession(
        agentId,
        ws,
        {
          db: this.#o.db,
          box: this.#o.box,
          kek: this.#o.kek,
          log: this.#o.log,
          heartbeatIntervalMs: this.#o.heartbeatIntervalMs,
          liveness: this.#liveness,
          welcomed: done,
          quiet: () => this.#closing,
        },
        (s) => this.#closed(s),
      );
      this.#sessions.set(agentId, session);
      previous?.close(CloseCode.replaced, 'replaced by a newer connection');
    });
  }

  #closed(s: AgentSession) {
    if (this.#sessions.get(s.agentId) !== s) return;
    this.#sessions.delete(s.agentId);
    this.#liveness.forget(s.agentId);
    // A connection that never got its welcome changed nothing (the agent may well be online
    // on its next attempt, or still on another replica): only a session that was up goes offline.
    if (!this.#closing && s.ready) {
      void setAgentStatus(this.#o.db, s.agentId, 'offline', 'disconnected').catch((err) =>
        this.#o.log.error({ err }, 'failed to record offline'),
      );
    }
  }

  /** Close this replica's socket for an agent (revocation). */
  revoke(agentId: string) {
    const s = this.#sessions.get(agentId);
    if (!s) return;
    this.#sessions.delete(agentId);
    s.close(CloseCode.revoked, 'agent revoked');
  }

  dispatch(agentId: string) {
    void this.#sessions.get(agentId)?.dispatchPending();
  }

  /**
   * Safety net behind NOTIFY (its connection may be down for a moment): push any
   * command still `queued` for an agent connected here.
   */
  async dispatchQueued() {
    if (this.#sessions.size === 0) return;
    // Normally none: read them all (indexed) and keep those connected here, rather than
    // sending the database every connected agent's id.
    const rows = await this.#o.db
      .selectFrom('commands')
      .select('agent_id')
      .distinct()
      .where('state', '=', 'queued')
      .where('created_at', '<', new Date(Date.now() - 1000))
      .execute();
    for (const r of rows) if (this.#sessions.has(r.agent_id)) this.dispatch(r.agent_id);
  }

  /**
   * A graceful stop: last-seen times written, sockets closed with 1001. No agent is marked
   * offline: they reconnect (here after a restart, or to another replica) well within the
   * staleness window, and one that does not is marked by the sweeper of whichever process
   * runs next. So a restart writes no status history and sends no notifications.
   */
  /** Write every heartbeat received so far (the sweeper calls this before judging silence). */
  flushLiveness(): Promise<void> {
    return this.#liveness.flush();
  }

  async close() {
    this.#closing = true;
    await this.#liveness.close();
    const n = this.#sessions.size;
    for (const s of this.#sessions.values()) s.close(CloseCode.goingAway, 'control plane shutting down');
    // Agents answer the close at once; one that does not within a second is cut off.
    const deadline = Date.now() + 1000;
    while (this.#wss.clients.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const ws of this.#wss.clients) ws.terminate();
    this.#o.log.info({ agents: n }, 'agent sockets closed');
    await new Promise<void>((r) => this.#wss.close(() => r()));
  }
}

function refuse(socket: Duplex, p: ProblemError, retryAfterSeconds?: number) {
  const body = JSON.stringify(problemBody(p));
  const reason = p.status === 401 ? 'Unauthorized' : p.status === 404 ? 'Not Found' : 'Service Unavailable';
  socket.end(
    `HTTP/1.1 ${p.status} ${reason}\r\n` +
      'Content-Type: application/problem+json\r\n' +
      (retryAfterSeconds !== undefined ? `Retry-After: ${retryAfterSeconds}\r\n` : '') +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `Date: ${new Date().toUTCString()}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}
