import { randomBytes } from 'node:crypto';
import { CompactEncrypt, compactDecrypt, importJWK, type JWK } from 'jose';

export const WRAP_ALG = 'ECDH-ES+A256KW';
export const WRAP_ENC = 'A256GCM';

export function newDataKey(): Buffer {
  return randomBytes(32);
}

/** Wrap a data key as a compact JWE to an X25519 public key. */
export async function wrapDataKey(dataKey: Buffer, publicJwk: JWK, kid: string): Promise<string> {
  const key = await importJWK(publicJwk, WRAP_ALG);
  return new CompactEncrypt(dataKey).setProtectedHeader({ alg: WRAP_ALG, enc: WRAP_ENC, kid }).encrypt(key);
}

export async function unwrapDataKey(jwe: string, privateJwk: JWK): Promise<Buffer> {
  const key = await importJWK(privateJwk, WRAP_ALG);
  const { plaintext } = await compactDecrypt(jwe, key, {
    keyManagementAlgorithms: [WRAP_ALG],
    contentEncryptionAlgorithms: [WRAP_ENC],
  });
  if (plaintext.length !== 32) throw new Error('unwrapped data key is not 32 bytes');
  return Buffer.from(plaintext);
}
