import { randomBytes } from 'node:crypto';
import type { KeyBinding } from '@dbbackup/proto';
import { CompactEncrypt, compactDecrypt, importJWK, type JWK } from 'jose';

export const WRAP_ALG = 'ECDH-ES+A256KW';
export const WRAP_ENC = 'A256GCM';

export function newDataKey(): Buffer {
  return randomBytes(32);
}

/**
 * Wrap a data key as a compact JWE to an X25519 public key, bound to its backup:
 * the protected header (authenticated by the JWE) names the backup, agent and target.
 */
export async function wrapDataKey(
  dataKey: Buffer,
  publicJwk: JWK,
  kid: string,
  binding: KeyBinding,
): Promise<string> {
  const key = await importJWK(publicJwk, WRAP_ALG);
  return new CompactEncrypt(dataKey)
    .setProtectedHeader({ alg: WRAP_ALG, enc: WRAP_ENC, kid, ...binding })
    .encrypt(key);
}

/** Unwrap a data key; `check` sees the authenticated protected header and returns a reason to refuse it. */
export async function unwrapDataKey(
  jwe: string,
  privateJwk: JWK,
  check?: (header: Record<string, unknown>) => string | undefined,
): Promise<Buffer> {
  const key = await importJWK(privateJwk, WRAP_ALG);
  const { plaintext, protectedHeader } = await compactDecrypt(jwe, key, {
    keyManagementAlgorithms: [WRAP_ALG],
    contentEncryptionAlgorithms: [WRAP_ENC],
  });
  const problem = check?.(protectedHeader as Record<string, unknown>);
  if (problem) {
    plaintext.fill(0);
    throw new KeyBindingError(problem);
  }
  if (plaintext.length !== 32) throw new Error('unwrapped data key is not 32 bytes');
  return Buffer.from(plaintext);
}

/** A data key offered for something it is not bound to. */
export class KeyBindingError extends Error {
  override name = 'KeyBindingError';
}
