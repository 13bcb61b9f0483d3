import { agentConnectUrl } from '@dbbackup/proto';
import { type ControlPlane, cleanupAll, waitFor } from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { controlPlane, rawIdentity } from './support.js';

let cp: ControlPlane;
let queued: ControlPlane;

/** Open the agent socket with a token; the upgrade's status and Retry-After (or the open socket). */
function upgrade(jwt: string, on = cp): Promise<{ status: number; retryAfter?: string; ws?: WebSocket }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(agentConnectUrl(on.url), {
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
  // No line to wait in: the others are refused at once.
  cp = await controlPlane({
    env: { DBBACKUP_MAX_AGENT_HANDSHAKES: '1', DBBACKUP_AGENT_ADMISSION_QUEUE: '0' },
  });
  queued = await controlPlane({
    env: { DBBACKUP_MAX_AGENT_HANDSHAKES: '1', DBBACKUP_AGENT_ADMISSION_QUEUE: '8' },
  });
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

  it('with a line: the others wait for the slot instead of being refused, and are admitted in turn', async () => {
    const ids = await Promise.all(Array.from({ length: 4 }, () => rawIdentity(queued)));
    const [first, ...rest] = await Promise.all(ids.map((id) => id.jwt()));
    const holder = await upgrade(first as string, queued);
    expect(holder.status).toBe(101);
    const settled: number[] = [];
    const waiting = rest.map((jwt) =>
      upgrade(jwt, queued).then((r) => {
        settled.push(r.status);
        // Each one admitted goes at once, freeing the slot for the next in line.
        r.ws?.terminate();
        return r;
      }),
    );
    await new Promise((r) => setTimeout(r, 700));
    expect(settled).toEqual([]);
    holder.ws?.terminate();
    const results = await Promise.all(waiting);
    expect(results.map((r) => r.status)).toEqual([101, 101, 101]);
  });
});
