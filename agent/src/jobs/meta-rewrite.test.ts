import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { rewriteMeta } from './meta-rewrite.js';

const dir = mkdtempSync(path.join(tmpdir(), 'dbb-metarw-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const backupId = '7c0c7a1e-3a39-4c6e-9d1e-7d3b0d1f2a10';
const sha256 = 'a'.repeat(64);
const metaKey = 'env/host/sqlite/db/2026/12/x.sql.zst.enc.meta.json';
const storage = { kind: 'local' as const, id: 's', directory: dir, prefix: '' };

async function plant() {
  await mkdir(path.dirname(path.join(dir, metaKey)), { recursive: true });
  const body = `${JSON.stringify({ backupId, sha256, wrappedKey: 'old', kekId: 'kek-old', signature: 'sig' }, null, 2)}\n`;
  writeFileSync(path.join(dir, metaKey), body);
  return body;
}

describe('meta.rewrite on the agent', () => {
  it('refuses a meta.json that is not the backup named (id or checksum), changing nothing', async () => {
    const before = await plant();
    for (const wrong of [
      { backupId: '00000000-0000-4000-8000-000000000000', sha256 },
      { backupId, sha256: '0'.repeat(64) },
    ]) {
      await expect(
        rewriteMeta({
          kind: 'meta.rewrite',
          storage,
          metaKey,
          ...wrong,
          wrappedKey: 'new',
          kekId: 'kek-new',
        }),
      ).rejects.toMatchObject({ code: 'meta-mismatch' });
      expect(readFileSync(path.join(dir, metaKey), 'utf8')).toBe(before);
    }
  });

  it('rewrites only the key wrapping of the backup named', async () => {
    await plant();
    const r = await rewriteMeta({
      kind: 'meta.rewrite',
      storage,
      metaKey,
      backupId,
      sha256,
      wrappedKey: 'new',
      kekId: 'kek-new',
    });
    expect(r).toMatchObject({ rewritten: true, previousKekId: 'kek-old' });
    expect(JSON.parse(readFileSync(path.join(dir, metaKey), 'utf8'))).toEqual({
      backupId,
      sha256,
      wrappedKey: 'new',
      kekId: 'kek-new',
      signature: 'sig',
    });
  });
});
