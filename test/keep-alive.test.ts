import { type ControlPlane, cleanupAll } from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlane } from './support.js';

// A pooled keep-alive client (Node's fetch) sending bodies to endpoints that answer
// early with a 4xx must never find its connection closed under its next request.

let cp: ControlPlane;
beforeAll(async () => {
  cp = await controlPlane();
});
afterAll(cleanupAll);

describe('a keep-alive client', () => {
  it('loses no request in 500 that get early errors (404, 422, 413, 401) with bodies', async () => {
    const big = 'x'.repeat(300_000);
    const huge = 'y'.repeat(1_200_000);
    const cases: { path: string; body: string; status: number; auth: boolean }[] = [
      { path: '/api/v1/no-such-route', body: JSON.stringify({ big }), status: 404, auth: true },
      { path: '/api/v1/storage', body: JSON.stringify({ kind: 'nope', big }), status: 422, auth: true },
      { path: '/api/v1/storage', body: JSON.stringify({ huge }), status: 413, auth: true },
      { path: '/api/v1/storage', body: JSON.stringify({ big }), status: 401, auth: false },
    ];
    const failures: string[] = [];
    for (let i = 0; i < 500; i++) {
      const k = cases[i % cases.length] as (typeof cases)[number];
      try {
        const r = await fetch(`${cp.url}${k.path}`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...(k.auth ? { authorization: `Bearer ${cp.adminToken}` } : {}),
          },
          body: k.body,
        });
        await r.arrayBuffer();
        if (r.status !== k.status) failures.push(`${i}: ${k.path} answered ${r.status}, not ${k.status}`);
      } catch (err) {
        failures.push(
          `${i}: ${k.path}: ${(err as Error).message} ${String((err as { cause?: unknown }).cause ?? '')}`,
        );
      }
      // A quick, valid request on the (possibly reused) pooled connection.
      try {
        const ok = await fetch(`${cp.url}/healthz`);
        await ok.arrayBuffer();
        if (ok.status !== 200) failures.push(`${i}: healthz ${ok.status}`);
      } catch (err) {
        failures.push(
          `${i}: healthz after ${k.path}: ${(err as Error).message} ${String((err as { cause?: unknown }).cause ?? '')}`,
        );
      }
    }
    expect(failures).toEqual([]);
  }, 180_000);
});
