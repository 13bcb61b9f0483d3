import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Encryption at rest for secrets the control plane must keep (storage
 * credentials, the KEK private key): AES-256-GCM under the master key, which
 * comes from DBBACKUP_MASTER_KEY or a 0600 file in the data directory.
 * Format: "v1:" base64url(iv | tag | ciphertext).
 */
export class SecretBox {
  readonly #key: Buffer;
  private constructor(key: Buffer) {
    this.#key = key;
  }

  /**
   * The master key from DBBACKUP_MASTER_KEY, else the data directory's master.key,
   * else a new one — but only when nothing sealed exists yet. `sealedSample` is a
   * value the database already holds: the key must open it, so a replica started
   * with another key (or none) refuses to start instead of failing every unseal.
   */
  static async load({
    masterKey,
    dataDir,
    sealedSample,
  }: {
    masterKey: string | undefined;
    dataDir: string;
    sealedSample?: string | undefined;
  }): Promise<SecretBox> {
    const file = path.join(dataDir, 'master.key');
    let box: SecretBox | undefined;
    let source = 'DBBACKUP_MASTER_KEY';
    if (masterKey) box = new SecretBox(Buffer.from(masterKey, 'base64'));
    else if (existsSync(file)) {
      const k = Buffer.from((await readFile(file, 'utf8')).trim(), 'base64');
      if (k.length !== 32) throw new MasterKeyError(`${file} does not hold a base64 32-byte key`);
      box = new SecretBox(k);
      source = file;
    }
    if (box) {
      if (sealedSample !== undefined && !box.#opens(sealedSample))
        throw new MasterKeyError(
          `the master key from ${source} does not open the data sealed in this database: set DBBACKUP_MASTER_KEY to the key every replica of this database uses`,
        );
      return box;
    }
    if (sealedSample !== undefined)
      throw new MasterKeyError(
        `this database holds data sealed with a master key, but DBBACKUP_MASTER_KEY is not set and ${file} does not exist: set DBBACKUP_MASTER_KEY to the key of the replica that created it (a new key is never made when sealed data exists)`,
      );
    const k = randomBytes(32);
    await writeFile(file, `${k.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    return new SecretBox(k);
  }

  /** A key for another purpose, derived from the master key (HKDF-SHA256), so it needs no storage of its own. */
  deriveKey(purpose: string): Uint8Array {
    return new Uint8Array(hkdfSync('sha256', this.#key, Buffer.alloc(0), `dbbackup ${purpose}`, 32));
  }

  #opens(sealed: string): boolean {
    try {
      this.open(sealed);
      return true;
    } catch {
      return false;
    }
  }

  seal(plain: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.#key, iv);
    const ct = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return `v1:${Buffer.concat([iv, c.getAuthTag(), ct]).toString('base64url')}`;
  }

  open(sealed: string): string {
    if (!sealed.startsWith('v1:')) throw new Error('unknown sealed format');
    const b = Buffer.from(sealed.slice(3), 'base64url');
    const d = createDecipheriv('aes-256-gcm', this.#key, b.subarray(0, 12));
    d.setAuthTag(b.subarray(12, 28));
    return Buffer.concat([d.update(b.subarray(28)), d.final()]).toString('utf8');
  }
}

/** The master key is missing or is not the one the database's sealed data was sealed with. */
export class MasterKeyError extends Error {
  override name = 'MasterKeyError';
}
