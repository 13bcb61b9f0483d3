import { randomUUID } from 'node:crypto';
import { agentConnectUrl } from '@dbbackup/proto';
import {
  type ControlPlane,
  createEnrollmentToken,
  query,
  startControlPlane,
  waitFor,
} from '@dbbackup/testkit';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import pg from 'pg';
import { inject } from 'vitest';
import WebSocket from 'ws';

/** A fresh database in the shared test cluster. */
export async function freshDatabase(): Promise<string> {
  const admin = inject('pgAdminUrl');
  const name = `cp_${randomUUID().replace(/-/g, '')}`;
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  return admin.replace(/\/[^/]*$/, `/${name}`);
}

export async function controlPlane(
  o: { heartbeatIntervalMs?: number; env?: Record<string, string> } = {},
): Promise<ControlPlane> {
  return startControlPlane({ databaseUrl: await freshDatabase(), ...o });
}

/** An agent identity the test holds the private key of, enrolled over HTTP, to craft connect tokens by hand. */
export async function rawIdentity(cp: ControlPlane) {
  const token = await createEnrollmentToken(cp);
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const r = await cp.api<{ agentId: string; audience: string }>(
    'POST',
    '/api/v1/agents/enroll',
    { token, hostname: 'raw-test', agentVersion: 'test', signingKey: await exportJWK(publicKey) },
    null,
  );
  if (r.status !== 201) throw new Error(`enroll: ${r.status} ${JSON.stringify(r.body)}`);
  const { agentId, audience } = r.body;
  return {
    agentId,
    audience,
    privateKey,
    async jwt(
      o: {
        iatOffsetS?: number;
        lifetimeS?: number;
        key?: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
        aud?: string;
        jti?: string;
      } = {},
    ) {
      const now = Math.floor(Date.now() / 1000) + (o.iatOffsetS ?? 0);
      return new SignJWT({})
        .setProtectedHeader({ alg: 'EdDSA' })
        .setSubject(agentId)
        .setAudience(o.aud ?? audience)
        .setIssuedAt(now)
        .setExpirationTime(now + (o.lifetimeS ?? 60))
        .setJti(o.jti ?? randomUUID())
        .sign(o.key ?? privateKey);
    },
  };
}

export type UpgradeResult =
  | { ok: true; ws: WebSocket }
  | { ok: false; status: number; body: { type?: string; detail?: string } };

/** Open the agent WebSocket with a given bearer token and report the HTTP outcome of the upgrade. */
export function connectWs(cp: ControlPlane, jwt: string | undefined): Promise<UpgradeResult> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(agentConnectUrl(`http://127.0.0.1:${cp.port}`), {
      headers: jwt ? { authorization: `Bearer ${jwt}` } : {},
    });
    ws.on('open', () => resolve({ ok: true, ws }));
    ws.on('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (c: Buffer) => {
        text += c.toString();
      });
      res.on('end', () => {
        resolve({ ok: false, status: res.statusCode ?? 0, body: text ? JSON.parse(text) : {} });
        ws.terminate();
      });
    });
    ws.on('error', (err) => {
      if (!('status' in err)) reject(err);
    });
  });
}

/** Wait for the server to close a socket; returns code and reason. */
export function closed(ws: WebSocket, timeoutMs = 5000): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('socket not closed in time')), timeoutMs);
    ws.on('close', (code, reason) => {
      clearTimeout(t);
      resolve({ code, reason: reason.toString() });
    });
  });
}

export const hello = (agentId: string) =>
  JSON.stringify({
    v: 1,
    type: 'hello',
    id: randomUUID(),
    payload: {
      agentId,
      agentVersion: 'test',
      protocol: { major: 1, minor: 0 },
      eventsAckedUpTo: 0,
      recentCommandIds: [],
    },
  });

export type AgentView = {
  id: string;
  status: string;
  facts: Record<string, unknown> | null;
  history?: { status: string; reason: string }[];
};
export type CommandView = { id: string; state: string; deliveries: number; result: unknown; error: unknown };

export async function getAgent(cp: ControlPlane, id: string) {
  const r = await cp.api<AgentView>('GET', `/api/v1/agents/${id}`);
  return r.body;
}

export async function getCommand(cp: ControlPlane, id: string) {
  return (await cp.api<CommandView>('GET', `/api/v1/commands/${id}`)).body;
}

/** How many times the agent reported starting a command, straight from the control plane's event table. */
export async function startedCount(cp: ControlPlane, commandId: string): Promise<number> {
  const rows = await query<{ n: string }>(
    cp.databaseUrl,
    "SELECT count(*) AS n FROM agent_events WHERE type = 'command.started' AND body->>'commandId' = $1",
    [commandId],
  );
  return Number(rows[0]?.n ?? 0);
}

/** Send a ping through the raw command API and wait until the agent has answered it. */
export async function pingAnswered(cp: ControlPlane, agentId: string) {
  const ping = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agentId}/commands`, {
    command: { kind: 'ping' },
  });
  if (ping.status !== 202) throw new Error(`ping: ${ping.status} ${JSON.stringify(ping.body)}`);
  await waitFor(
    async () =>
      (await cp.api<{ state: string }>('GET', `/api/v1/commands/${ping.body.id}`)).body.state === 'succeeded',
    { what: 'ping answered' },
  );
}

/**
 * Waits for the firing backup_missed alert of a target whose agent is gone, and returns it.
 * With a schedule every few seconds and a short grace, an alert can fire while a backup is still
 * being written and resolve when it lands; the one that names the newest good backup in the
 * catalogue cannot be moved on by anything the dead agent sends, so it stays firing.
 */
export async function missedSinceLastGood<A extends { details: { lastGoodBackupAt: string | null } }>(
  cp: ControlPlane,
  targetId: string,
): Promise<A> {
  const { value } = await waitFor(
    async () => {
      const good = (
        await cp.api<{ items: { status: string; startedAt: string }[] }>(
          'GET',
          `/api/v1/backups?target=${targetId}`,
        )
      ).body.items.find((b) => b.status === 'completed');
      const firing = (
        await cp.api<{ items: A[] }>(
          'GET',
          `/api/v1/alerts?target=${targetId}&state=firing&kind=backup_missed`,
        )
      ).body.items;
      return firing.length === 1 && firing[0]!.details.lastGoodBackupAt === (good?.startedAt ?? null)
        ? firing[0]
        : undefined;
    },
    { timeoutMs: 30_000, what: 'backup_missed since the last good backup' },
  );
  return value;
}
