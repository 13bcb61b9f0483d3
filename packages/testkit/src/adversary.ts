import { randomUUID } from 'node:crypto';
import { agentConnectUrl } from '@dbbackup/proto';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import WebSocket from 'ws';
import { createEnrollmentToken, waitFor } from './agent.js';
import type { ControlPlane } from './control-plane.js';

type Msg = { type: string; id: string; payload: Record<string, unknown> };

/**
 * An agent driven by hand: a real enrolment with real Ed25519 and X25519 keys on
 * the real socket, whose hello, events, results and command answers a test writes.
 * It is what a compromised database host can do, for tests of the trust boundary.
 */
export interface Adversary {
  agentId: string;
  /** The private half of the agent's encryption key (to unwrap what the control plane re-wraps for it). */
  encryptionPrivateJwk: JWK;
  /** Every message the control plane sent on the current connection, in order. */
  inbox: Msg[];
  /** Connect, say hello, and wait for the welcome; answers target tests with success unless told otherwise. */
  connect(o?: { eventsAckedUpTo?: number }): Promise<Msg>;
  /** Send one raw frame. */
  raw(text: string): void;
  send(type: string, payload: unknown): void;
  /** Send an event with the next sequence number (or the one given) and wait for its acknowledgement. */
  event(body: Record<string, unknown>, o?: { seq?: number; wait?: boolean }): Promise<number | undefined>;
  /** The next command of a kind the control plane pushes (already acknowledged with command.ack). */
  command(
    kind?: string,
    timeoutMs?: number,
  ): Promise<{ commandId: string; command: Record<string, unknown> }>;
  /** Run one command to success with a result, as a real agent would report it. */
  succeed(commandId: string, result: unknown): Promise<void>;
  /** Resolves when the control plane closes the socket. */
  closed(): Promise<{ code: number; reason: string }>;
  close(): void;
  /** The next sequence number this agent will use. */
  seq: number;
}

/** A real enrolment with fresh keys: the agent id, the audience and both key pairs. */
async function enrolWithKeys(cp: ControlPlane, hostname: string) {
  const token = await createEnrollmentToken(cp);
  const signing = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const enc = await generateKeyPair('ECDH-ES+A256KW', { crv: 'X25519', extractable: true });
  const r = await cp.api<{ agentId: string; audience: string }>(
    'POST',
    '/api/v1/agents/enroll',
    {
      token,
      hostname,
      agentVersion: 'adversary',
      signingKey: await exportJWK(signing.publicKey),
      encryptionKey: await exportJWK(enc.publicKey),
    },
    null,
  );
  if (r.status !== 201) throw new Error(`enroll: ${r.status} ${JSON.stringify(r.body)}`);
  return { ...r.body, signing, encryptionPrivateJwk: await exportJWK(enc.privateKey) };
}

type Enrolled = Awaited<ReturnType<typeof enrolWithKeys>>;

class HandDrivenAgent implements Adversary {
  readonly agentId: string;
  readonly encryptionPrivateJwk: JWK;
  inbox: Msg[] = [];
  seq = 1;
  #ws: WebSocket | undefined;
  #closed: Promise<{ code: number; reason: string }> = Promise.resolve({ code: 0, reason: '' });
  readonly #seen = new Set<string>();

  constructor(
    readonly cp: ControlPlane,
    readonly enrolled: Enrolled,
  ) {
    this.agentId = enrolled.agentId;
    this.encryptionPrivateJwk = enrolled.encryptionPrivateJwk;
  }

  async #token() {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({})
      .setProtectedHeader({ alg: 'EdDSA' })
      .setSubject(this.agentId)
      .setAudience(this.enrolled.audience)
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .setJti(randomUUID())
      .sign(this.enrolled.signing.privateKey);
  }

  #onMessage(d: WebSocket.RawData) {
    const m = JSON.parse(d.toString()) as Msg;
    this.inbox.push(m);
    // A target test is answered like a healthy agent would, so the API saves the target.
    if (m.type === 'command' && (m.payload.command as { kind: string }).kind === 'target.test') {
      const commandId = m.payload.commandId as string;
      this.#seen.add(commandId);
      this.send('command.ack', { commandId });
      void this.succeed(commandId, { serverVersion: 'adversary 1', toolVersion: 'adversary 1' });
    }
  }

  async connect(o: { eventsAckedUpTo?: number } = {}) {
    const jwt = await this.#token();
    this.inbox = [];
    this.#seen.clear();
    const sock = new WebSocket(agentConnectUrl(`http://127.0.0.1:${this.cp.port}`), {
      headers: { authorization: `Bearer ${jwt}` },
    });
    this.#ws = sock;
    this.#closed = new Promise((resolve) =>
      sock.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    sock.on('message', (d) => this.#onMessage(d));
    await new Promise<void>((resolve, reject) => {
      sock.once('open', () => resolve());
      sock.once('error', reject);
    });
    // Keep the session alive as a real agent's heartbeats would (any frame counts).
    const keepAlive = setInterval(() => this.send('ping', { t: Date.now() }), 150);
    sock.on('close', () => clearInterval(keepAlive));
    this.send('hello', {
      agentId: this.agentId,
      agentVersion: 'adversary',
      protocol: { major: 1, minor: 3 },
      eventsAckedUpTo: o.eventsAckedUpTo ?? this.seq - 1,
      recentCommandIds: [],
    });
    const welcome = await waitFor(async () => this.inbox.find((m) => m.type === 'welcome'), {
      what: 'welcome',
    });
    this.seq = Math.max(this.seq, Number(welcome.value.payload.eventsAckedUpTo) + 1);
    return welcome.value;
  }

  raw(text: string) {
    this.#ws?.send(text);
  }

  send(type: string, payload: unknown) {
    this.#ws?.send(JSON.stringify({ v: 1, type, id: randomUUID(), payload }));
  }

  async event(body: Record<string, unknown>, o: { seq?: number; wait?: boolean } = {}) {
    const seq = o.seq ?? this.seq++;
    this.send('event', { seq, at: new Date().toISOString(), body });
    if (o.wait === false) return undefined;
    const ack = await waitFor(
      async () => this.inbox.find((m) => m.type === 'event.ack' && Number(m.payload.upTo) >= seq),
      { what: `ack of event ${seq}` },
    );
    return Number(ack.value.payload.upTo);
  }

  async command(kind?: string, timeoutMs = 20_000) {
    const m = await waitFor(
      async () =>
        this.inbox.find(
          (x) =>
            x.type === 'command' &&
            !this.#seen.has(x.payload.commandId as string) &&
            (!kind || (x.payload.command as { kind: string }).kind === kind),
        ),
      { what: `command ${kind ?? ''}`, timeoutMs },
    );
    const commandId = m.value.payload.commandId as string;
    this.#seen.add(commandId);
    this.send('command.ack', { commandId });
    return { commandId, command: m.value.payload.command as Record<string, unknown> };
  }

  async succeed(commandId: string, result: unknown) {
    await this.event({ type: 'command.started', commandId });
    await this.event({ type: 'command.succeeded', commandId, result });
  }

  closed() {
    return this.#closed;
  }

  close() {
    this.#ws?.terminate();
  }
}

export async function enrolAdversary(cp: ControlPlane, hostname = 'adversary'): Promise<Adversary> {
  return new HandDrivenAgent(cp, await enrolWithKeys(cp, hostname));
}
