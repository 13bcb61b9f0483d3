import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cleanupAll, REPO_ROOT, startProcess, trackDir } from '@dbbackup/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { controlPlane } from './support.js';

afterAll(cleanupAll);

const CP_BIN = path.join(REPO_ROOT, 'control-plane/bin/dbbackup-control-plane');

/** A second replica on the same database, with its own data directory and the given master key (or none). */
async function replica(databaseUrl: string, masterKey: string | undefined) {
  const dataDir = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-replica-')));
  const p = startProcess(CP_BIN, [], {
    env: {
      DBBACKUP_DATABASE_URL: databaseUrl,
      DBBACKUP_DATA_DIR: dataDir,
      DBBACKUP_HOST: '127.0.0.1',
      DBBACKUP_PORT: '0',
      ...(masterKey ? { DBBACKUP_MASTER_KEY: masterKey } : {}),
    },
  });
  const outcome = await Promise.race([
    p.exited.then((e) => ({ exited: e.code })),
    p.waitForLine(/control plane listening/, 60_000).then(() => ({ exited: undefined })),
  ]);
  if (outcome.exited === undefined) await p.kill('SIGTERM');
  return { exited: outcome.exited, output: p.lines.join('\n') };
}

describe('the master key', () => {
  it('a replica whose key does not open the sealed data refuses to start, naming DBBACKUP_MASTER_KEY', async () => {
    const key = randomBytes(32).toString('base64');
    // The first replica seals its key-encryption key into the database.
    const first = await controlPlane({ env: { DBBACKUP_MASTER_KEY: key } });
    const db = first.databaseUrl;

    const wrong = await replica(db, randomBytes(32).toString('base64'));
    expect(wrong.exited).toBe(2);
    expect(wrong.output).toMatch(/DBBACKUP_MASTER_KEY/);
    expect(wrong.output).toMatch(/does not open the data sealed in this database/);

    const none = await replica(db, undefined);
    expect(none.exited).toBe(2);
    expect(none.output).toMatch(/a new key is never made when sealed data exists/);

    const right = await replica(db, key);
    expect(right.exited).toBeUndefined();

    // Nothing was changed by the refused replicas: the first one still unseals what it holds.
    const kek = await first.api<{ privateJwk?: unknown }>('POST', '/api/v1/keys/kek/export');
    expect(kek.status).toBe(200);
    expect(kek.body.privateJwk).toBeTruthy();
  });
});
