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

export async function enrolAdversary(cp: ControlPlane, hostname = 'adversary'): Promise<Adversary> {
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
  const { agentId, audience } = r.body;
  const encryptionPrivateJwk = await exportJWK(enc.privateKey);
  let ws: WebSocket | undefined;
  let closedP: Promise<{ code: number; reason: string }> = Promise.resolve({ code: 0, reason: '' });
  const seen = new Set<string>();
  const a: Adversary = {
    agentId,
    encryptionPrivateJwk,
    inbox: [],
    seq: 1,
    async connect(o = {}) {
      const now = Math.floor(Date.now() / 1000);
      const jwt = await new SignJWT({})
        .setProtectedHeader({ alg: 'EdDSA' })
        .setSubject(agentId)
        .setAudience(audience)
        .setIssuedAt(now)
        .setExpirationTime(now + 60)
        .setJti(randomUUID())
        .sign(signing.privateKey);
      a.inbox = [];
      seen.clear();
      const sock = new WebSocket(agentConnectUrl(`http://127.0.0.1:${cp.port}`), {
        headers: { authorization: `Bearer ${jwt}` },
      });
      ws = sock;
      closedP = new Promise((resolve) =>
        sock.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
      );
      sock.on('message', (d) => {
        const m = JSON.parse(d.toString()) as Msg;
        a.inbox.push(m);
        // A target test is answered like a healthy agent would, so the API saves the target.
        if (m.type === 'command' && (m.payload.command as { kind: string }).kind === 'target.test') {
          const commandId = m.payload.commandId as string;
          seen.add(commandId);
          a.send('command.ack', { commandId });
          void a.succeed(commandId, { serverVersion: 'adversary 1', toolVersion: 'adversary 1' });
        }
      });
      await new Promise<void>((resolve, reject) => {
        sock.once('open', () => resolve());
        sock.once('error', reject);
      });
      // Keep the session alive as a real agent's heartbeats would (any frame counts).
      const keepAlive = setInterval(() => a.send('ping', { t: Date.now() }), 150);
      sock.on('close', () => clearInterval(keepAlive));
      a.send('hello', {
        agentId,
        agentVersion: 'adversary',
        protocol: { major: 1, minor: 3 },
        eventsAckedUpTo: o.eventsAckedUpTo ?? a.seq - 1,
        recentCommandIds: [],
      });
      const welcome = await waitFor(async () => a.inbox.find((m) => m.type === 'welcome'), {
        what: 'welcome',
      });
      a.seq = Math.max(a.seq, Number(welcome.value.payload.eventsAckedUpTo) + 1);
      return welcome.value;
    },
    raw(text) {
      ws?.send(text);
    },
    send(type, payload) {
      ws?.send(JSON.stringify({ v: 1, type, id: randomUUID(), payload }));
    },
    async event(body, o = {}) {
      const seq = o.seq ?? a.seq++;
      a.send('event', { seq, at: new Date().toISOString(), body });
      if (o.wait === false) return undefined;
      const ack = await waitFor(
        async () => a.inbox.find((m) => m.type === 'event.ack' && Number(m.payload.upTo) >= seq),
        { what: `ack of event ${seq}` },
      );
      return Number(ack.value.payload.upTo);
    },
    async command(kind, timeoutMs = 20_000) {
      const m = await waitFor(
        async () =>
          a.inbox.find(
            (x) =>
              x.type === 'command' &&
              !seen.has(x.payload.commandId as string) &&
              (!kind || (x.payload.command as { kind: string }).kind === kind),
          ),
        { what: `command ${kind ?? ''}`, timeoutMs },
      );
      const commandId = m.value.payload.commandId as string;
      seen.add(commandId);
      a.send('command.ack', { commandId });
      return { commandId, command: m.value.payload.command as Record<string, unknown> };
    },
    async succeed(commandId, result) {
      await a.event({ type: 'command.started', commandId });
      await a.event({ type: 'command.succeeded', commandId, result });
    },
    closed: () => closedP,
    close() {
      ws?.terminate();
    },
  };
  return a;
}
