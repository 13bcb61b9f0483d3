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

  static async load({
    masterKey,
    dataDir,
  }: {
    masterKey: string | undefined;
    dataDir: string;
  }): Promise<SecretBox> {
    if (masterKey) return new SecretBox(Buffer.from(masterKey, 'base64'));
    const file = path.join(dataDir, 'master.key');
    if (existsSync(file)) {
      const k = Buffer.from((await readFile(file, 'utf8')).trim(), 'base64');
      if (k.length !== 32) throw new Error(`${file} does not hold a base64 32-byte key`);
      return new SecretBox(k);
    }
    const k = randomBytes(32);
    await writeFile(file, `${k.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    return new SecretBox(k);
  }

  /** A key for another purpose, derived from the master key (HKDF-SHA256), so it needs no storage of its own. */
  deriveKey(purpose: string): Uint8Array {
    return new Uint8Array(hkdfSync('sha256', this.#key, Buffer.alloc(0), `dbbackup ${purpose}`, 32));
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
