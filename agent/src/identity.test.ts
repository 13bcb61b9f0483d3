import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decodeProtectedHeader, importJWK, type JWK, jwtVerify } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { connectToken, createKeys, loadIdentity, saveEnrollment } from './identity.js';

const dir = mkdtempSync(path.join(tmpdir(), 'dbb-identity-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let publicKey: JWK | undefined;

describe('connectToken (signed with node:crypto, verified as the control plane does with jose)', () => {
  it('is an EdDSA JWT for this agent and audience that jose verifies with the enrolled public key', async () => {
    const { signingPublic } = await createKeys(dir);
    publicKey = signingPublic;
    await saveEnrollment(dir, {
      agentId: 'a1b2',
      server: 'http://127.0.0.1:1',
      audience: 'cluster-7',
      enrolledAt: new Date().toISOString(),
    });
    const id = await loadIdentity(dir);
    const token = await connectToken(id, 120);
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'EdDSA', typ: 'JWT' });
    const key = await importJWK(signingPublic, 'EdDSA');
    const { payload } = await jwtVerify(token, key, { audience: 'cluster-7', algorithms: ['EdDSA'] });
    expect(payload.sub).toBe('a1b2');
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(120);
    expect(payload.jti).toMatch(/^[0-9a-f-]{36}$/);
    expect(token).not.toBe(await connectToken(id, 120)); // single-use: a fresh jti every time
  });

  it('fails verification when the claims are changed', async () => {
    const [h, p, sig] = (await connectToken(await loadIdentity(dir))).split('.');
    const claims = JSON.parse(Buffer.from(p as string, 'base64url').toString());
    const forged = Buffer.from(JSON.stringify({ ...claims, sub: 'someone-else' })).toString('base64url');
    const key = await importJWK(publicKey as JWK, 'EdDSA');
    await expect(jwtVerify(`${h}.${forged}.${sig}`, key)).rejects.toThrow(/signature/);
  });
});
