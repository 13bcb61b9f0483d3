import { randomUUID } from 'node:crypto';
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

/** Unwrap a data key with the KEK it was wrapped to and wrap it to another public key; plaintext only in memory. */
export async function rewrap(
  db: Db,
  box: SecretBox,
  jwe: string,
  kid: string,
  toPublicJwk: JWK,
): Promise<string> {
  return rewrapForAgent(db, box, jwe, kid, toPublicJwk);
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
  if (!row) throw new Error(`unknown key-encryption key ${kid}`);
  if (!row.private_enc) throw new Error(`key-encryption key ${kid} was retired after a key rotation`);
  return JSON.parse(box.open(row.private_enc)) as JWK;
}

/**
 * Re-wrap one backup's data key from the KEK it was wrapped to, to another public
 * key: an agent's own (one restore or verify) or a new KEK (key rotation). The
 * plaintext key exists only in this function's memory.
 */
export async function rewrapForAgent(
  db: Db,
  box: SecretBox,
  jwe: string,
  kid: string,
  agentPublicJwk: JWK,
): Promise<string> {
  const priv = await importJWK(await kekPrivateJwk(db, box, kid), WRAP_ALG);
  const { plaintext } = await compactDecrypt(jwe, priv, {
    keyManagementAlgorithms: [WRAP_ALG],
    contentEncryptionAlgorithms: [WRAP_ENC],
  });
  try {
    const pub = await importJWK(agentPublicJwk, WRAP_ALG);
    return await new CompactEncrypt(plaintext)
      .setProtectedHeader({ alg: WRAP_ALG, enc: WRAP_ENC })
      .encrypt(pub);
  } finally {
    plaintext.fill(0);
  }
}
