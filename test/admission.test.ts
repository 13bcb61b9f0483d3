import { agentConnectUrl } from '@dbbackup/proto';
import { type ControlPlane, cleanupAll, waitFor } from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { controlPlane, rawIdentity } from './support.js';

let cp: ControlPlane;

/** Open the agent socket with a token; the upgrade's status and Retry-After (or the open socket). */
function upgrade(jwt: string): Promise<{ status: number; retryAfter?: string; ws?: WebSocket }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(agentConnectUrl(`http://127.0.0.1:${cp.port}`), {
      headers: { authorization: `Bearer ${jwt}` },
    });
    ws.on('open', () => resolve({ status: 101, ws }));
    ws.on('unexpected-response', (_req, res) => {
      const ra = res.headers['retry-after'];
      resolve({ status: res.statusCode ?? 0, ...(typeof ra === 'string' ? { retryAfter: ra } : {}) });
      res.resume();
      ws.terminate();
    });
    ws.on('error', (err) => {
      if (!('status' in err)) reject(err);
    });
  });
}

beforeAll(async () => {
  // One handshake at a time: the second agent that knocks while one is being admitted waits.
  cp = await controlPlane({ env: { DBBACKUP_MAX_AGENT_HANDSHAKES: '1' } });
}, 120_000);
afterAll(cleanupAll);

describe('admission of a reconnecting fleet', () => {
  it('admits a bounded number of handshakes at once; the others get 503 with a Retry-After of 2 to 5 s', async () => {
    const ids = await Promise.all(Array.from({ length: 6 }, () => rawIdentity(cp)));
    // The first holds its slot: it opened the socket and has not said hello.
    const holder = await upgrade(await (ids[0] as Awaited<ReturnType<typeof rawIdentity>>).jwt());
    expect(holder.status).toBe(101);
    const others = await Promise.all(ids.slice(1).map(async (id) => upgrade(await id.jwt())));
    for (const o of others) {
      expect(o.status).toBe(503);
      expect(Number(o.retryAfter)).toBeGreaterThanOrEqual(2);
      expect(Number(o.retryAfter)).toBeLessThanOrEqual(5);
    }
    // Its slot is free again once it goes: the next one is admitted (and goes too).
    holder.ws?.terminate();
    const next = await waitFor(
      async () => {
        const r = await upgrade(await (ids[1] as Awaited<ReturnType<typeof rawIdentity>>).jwt());
        return r.status === 101 ? r : undefined;
      },
      { what: 'admitted after the slot freed' },
    );
    next.value.ws?.terminate();
  });
});
