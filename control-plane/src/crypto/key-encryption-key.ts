import { randomUUID } from 'node:crypto';
import { type ForAgentBinding, keyBindingOf, keyBindingProblem } from '@dbbackup/proto';
import { CompactEncrypt, compactDecrypt, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { type Db, json } from '../db/database.js';
import type { SecretBox } from './secret-box.js';

export const WRAP_ALG = 'ECDH-ES+A256KW';
export const WRAP_ENC = 'A256GCM';

export interface Kek {
  kid: string;
  publicJwk: Record<string, string>;
}

/**
 * The key-encryption key pair (X25519). Agents wrap each backup's data key to
 * its public half; the private half is stored sealed with the master key. It is
 * created on first start.
 */
export async function ensureKek(db: Db, box: SecretBox): Promise<Kek> {
  const existing = await db
    .selectFrom('keys')
    .select(['kid', 'public_jwk'])
    .where('purpose', '=', 'kek')
    .where('active', '=', true)
    .executeTakeFirst();
  if (existing) return { kid: existing.kid, publicJwk: existing.public_jwk };
  await insertKek(db, box, true);
  return ensureKekExisting(db);
}

/** A new KEK pair: public JWK stored plain, private JWK sealed with the master key. */
export async function insertKek(db: Db, box: SecretBox, active: boolean): Promise<Kek> {
  const { publicKey, privateKey } = await generateKeyPair(WRAP_ALG, { crv: 'X25519', extractable: true });
  const kid = `kek-${randomUUID()}`;
  const publicJwk = { ...(await exportJWK(publicKey)), kid } as unknown as Record<string, string>;
  const privateJwk = { ...(await exportJWK(privateKey)), kid };
  await db
    .insertInto('keys')
    .values({
      kid,
      purpose: 'kek',
      public_jwk: json(publicJwk),
      private_enc: box.seal(JSON.stringify(privateJwk)),
      active,
    })
    .onConflict((oc) => oc.doNothing())
    .execute();
  return { kid, publicJwk };
}

/**
 * The active key-encryption key, read from the database at each use: after a
 * rotation every replica hands out the new key at once, with no state to share.
 */
export class KekSource {
  constructor(private readonly db: Db) {}
  current(): Promise<Kek> {
    return ensureKekExisting(this.db);
  }
}

async function ensureKekExisting(db: Db): Promise<Kek> {
  const row = await db
    .selectFrom('keys')
    .select(['kid', 'public_jwk'])
    .where('purpose', '=', 'kek')
    .where('active', '=', true)
    .orderBy('created_at')
    .executeTakeFirstOrThrow();
  return { kid: row.kid, publicJwk: row.public_jwk };
}

export async function kekPrivateJwk(db: Db, box: SecretBox, kid: string): Promise<JWK> {
  const row = await db.selectFrom('keys').select('private_enc').where('kid', '=', kid).executeTakeFirst();
  if (!row) throw new KeyUnavailable(`unknown key-encryption key ${kid}`);
  if (!row.private_enc)
    throw new KeyUnavailable(`key-encryption key ${kid} was retired after a key rotation`);
  return JSON.parse(box.open(row.private_enc)) as JWK;
}

/** A backup's data key as the catalogue knows it. */
export interface CataloguedKey {
  backupId: string;
  agentId: string;
  /** The target the backup is of (meta.targetId; the catalogue row may have lost it to a deletion). */
  targetId: string;
  wrappedKey: string;
  kekId: string;
  /** False only for backups catalogued before data keys were bound to their backup. */
  keyBound: boolean;
}

/** The key-encryption key a data key is wrapped to is not held (unknown, or retired). */
export class KeyUnavailable extends Error {
  override name = 'KeyUnavailable';
}

/** A data key that is not bound to the backup it is offered for. */
export class KeyBindingRefused extends Error {
  override name = 'KeyBindingRefused';
}

/**
 * Unwrap a backup's data key with the KEK it was wrapped to, and check the binding
 * its (now authenticated) protected header carries against the catalogue entry.
 * A key with no binding is accepted only for a legacy entry (`legacy: true`, which
 * the caller logs). The plaintext is the caller's to wipe.
 */
async function unwrapCatalogued(
  db: Db,
  box: SecretBox,
  k: CataloguedKey,
): Promise<{ plaintext: Uint8Array; header: Record<string, unknown>; legacy: boolean }> {
  const priv = await importJWK(await kekPrivateJwk(db, box, k.kekId), WRAP_ALG);
  const { plaintext, protectedHeader } = await compactDecrypt(k.wrappedKey, priv, {
    keyManagementAlgorithms: [WRAP_ALG],
    contentEncryptionAlgorithms: [WRAP_ENC],
  });
  const header = protectedHeader as Record<string, unknown>;
  const bound = keyBindingOf(header);
  if (!bound && !k.keyBound) return { plaintext, header, legacy: true };
  const problem = keyBindingProblem(header, { bid: k.backupId, aid: k.agentId, tid: k.targetId });
  if (problem) {
    plaintext.fill(0);
    throw new KeyBindingRefused(problem);
  }
  return { plaintext, header, legacy: false };
}

/**
 * Re-wrap one backup's data key to the agent that will restore or verify it: bound
 * to that backup and that agent, for a restore, until `expiresAt`. The plaintext key
 * exists only in this function's memory.
 */
export async function rewrapForAgent(
  db: Db,
  box: SecretBox,
  k: CataloguedKey,
  recipient: { agentId: string; publicJwk: JWK },
  expiresAt: Date,
): Promise<{ jwe: string; legacy: boolean }> {
  const { plaintext, legacy } = await unwrapCatalogued(db, box, k);
  try {
    const pub = await importJWK(recipient.publicJwk, WRAP_ALG);
    const binding: ForAgentBinding = {
      bid: k.backupId,
      aid: recipient.agentId,
      use: 'restore',
      exp: Math.floor(expiresAt.getTime() / 1000),
    };
    const jwe = await new CompactEncrypt(plaintext)
      .setProtectedHeader({ alg: WRAP_ALG, enc: WRAP_ENC, ...binding })
      .encrypt(pub);
    return { jwe, legacy };
  } finally {
    plaintext.fill(0);
  }
}

/**
 * Re-wrap one backup's data key to a new key-encryption key (key rotation),
 * keeping its binding: the new wrapping carries the same backup, agent and target.
 */
export async function rewrapToKek(
  db: Db,
  box: SecretBox,
  k: CataloguedKey,
  to: { kid: string; publicJwk: JWK },
): Promise<string> {
  const { plaintext, header } = await unwrapCatalogued(db, box, k);
  try {
    const pub = await importJWK(to.publicJwk, WRAP_ALG);
    const bound = keyBindingOf(header);
    return await new CompactEncrypt(plaintext)
      .setProtectedHeader({ alg: WRAP_ALG, enc: WRAP_ENC, kid: to.kid, ...(bound ?? {}) })
      .encrypt(pub);
  } finally {
    plaintext.fill(0);
  }
}
