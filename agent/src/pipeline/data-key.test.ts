import { forAgentBindingProblem } from '@dbbackup/proto';
import { CompactEncrypt, exportJWK, generateKeyPair } from 'jose';
import { describe, expect, it } from 'vitest';
import { KeyBindingError, newDataKey, unwrapDataKey, WRAP_ALG, WRAP_ENC } from './data-key.js';

// The key the control plane re-wraps for one restore is used only for that backup, by
// that agent, before it expires (the header is authenticated by the JWE).
describe('a re-wrapped data key', () => {
  const now = () => Math.floor(Date.now() / 1000);

  async function rewrapped(header: Record<string, unknown>) {
    const { publicKey, privateKey } = await generateKeyPair(WRAP_ALG, { crv: 'X25519', extractable: true });
    const key = newDataKey();
    const jwe = await new CompactEncrypt(key)
      .setProtectedHeader({ alg: WRAP_ALG, enc: WRAP_ENC, ...header })
      .encrypt(publicKey);
    return { jwe, priv: await exportJWK(privateKey), key };
  }
  const check = (bid: string) => (h: Record<string, unknown>) =>
    forAgentBindingProblem(h, { bid, aid: 'agent-a' }, now());

  it('opens for the backup and agent it names, before it expires', async () => {
    const r = await rewrapped({ bid: 'b1', aid: 'agent-a', use: 'restore', exp: now() + 60 });
    expect((await unwrapDataKey(r.jwe, r.priv, check('b1'))).equals(r.key)).toBe(true);
  });

  it.each([
    ['another backup', { bid: 'b2', aid: 'agent-a', use: 'restore', exp: now() + 60 }, /for backup b2/],
    ['another agent', { bid: 'b1', aid: 'agent-b', use: 'restore', exp: now() + 60 }, /not this one/],
    ['expired', { bid: 'b1', aid: 'agent-a', use: 'restore', exp: now() - 1 }, /expired/],
    ['no purpose', { bid: 'b1', aid: 'agent-a', exp: now() + 60 }, /not for a restore/],
    ['no binding at all', {}, /not for a restore/],
  ])('is refused when it is for %s', async (_what, header, reason) => {
    const r = await rewrapped(header);
    const err = await unwrapDataKey(r.jwe, r.priv, check('b1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeyBindingError);
    expect((err as Error).message).toMatch(reason);
  });
});
