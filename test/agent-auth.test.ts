import { type ControlPlane, cleanupAll } from '@dbbackup/testkit';
import { generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closed, connectWs, controlPlane, rawIdentity } from './support.js';

let cp: ControlPlane;
let id: Awaited<ReturnType<typeof rawIdentity>>;
beforeAll(async () => {
  cp = await controlPlane();
  id = await rawIdentity(cp);
});
afterAll(cleanupAll);

async function expectRefused(jwt: string | undefined, type?: RegExp) {
  const r = await connectWs(cp, jwt);
  expect(r.ok).toBe(false);
  if (r.ok) return r.ws.terminate();
  expect(r.status).toBe(401);
  if (type) expect(r.body.type).toMatch(type);
  return r.body;
}

describe('agent connect tokens', () => {
  it('accept a fresh token signed by the enrolled key (control)', async () => {
    const r = await connectWs(cp, await id.jwt());
    expect(r.ok).toBe(true);
    if (r.ok) {
      r.ws.close();
      await closed(r.ws);
    }
  });

  it('refuse a token signed by another key with 401 and open no socket', async () => {
    const other = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    await expectRefused(await id.jwt({ key: other.privateKey }));
  });

  it('refuse an expired token', async () => {
    const body = await expectRefused(await id.jwt({ iatOffsetS: -600, lifetimeS: 60 }), /token-expired/);
    expect(body?.detail).toMatch(/expired \d+ s ago/);
  });

  it('refuse a replayed token', async () => {
    const jwt = await id.jwt();
    const first = await connectWs(cp, jwt);
    expect(first.ok).toBe(true);
    if (first.ok) first.ws.terminate();
    await expectRefused(jwt, /token-replayed/);
  });

  it('tolerate a few seconds of clock skew but name a larger one', async () => {
    const near = await connectWs(cp, await id.jwt({ iatOffsetS: 3 }));
    expect(near.ok).toBe(true);
    if (near.ok) near.ws.terminate();
    const body = await expectRefused(await id.jwt({ iatOffsetS: 120 }), /clock-skew/);
    expect(body?.detail).toMatch(/clock is ahead/);
  });

  it('refuse a token for another audience, a long-lived token and a missing token', async () => {
    await expectRefused(await id.jwt({ aud: 'some-other-control-plane' }));
    await expectRefused(await id.jwt({ lifetimeS: 3600 }));
    await expectRefused(undefined);
    await expectRefused('not-a-jwt');
  });
});
