import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { StorageSpec } from '@dbbackup/proto';
import { AgentError } from '../agent-error.js';
import { readAll } from './object-store.js';
import { openStore } from './open-store.js';

/** The size of the object a storage test writes. */
export const PROBE_BYTES = 64 * 1024;

/**
 * A storage profile's test from this host: write a 64 KiB object of random bytes below the
 * profile's prefix, read it back and compare, then delete it. Each step is timed; the first
 * that fails names itself. The probe is deleted whatever happened after it was written.
 */
export async function testStorage(spec: StorageSpec) {
  const store = await openStore(spec);
  const key = store.key(`.dbbackup-test/${randomUUID()}`);
  const body = randomBytes(PROBE_BYTES);
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<[T, number]> => {
    const t0 = performance.now();
    try {
      return [await fn(), Math.round(performance.now() - t0)];
    } catch (err) {
      throw new AgentError('storage-failed', `${name} failed: ${(err as Error).message}`);
    }
  };
  const [, writeMs] = await step(`writing ${key}`, () => store.putSmall(key, body));
  let written = true;
  try {
    const [back, readMs] = await step(`reading ${key} back`, () => readAll(store, key));
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    if (sha(back) !== sha(body))
      throw new AgentError('storage-failed', `reading ${key} back gave other bytes (${back.length} bytes)`);
    const [, deleteMs] = await step(`deleting ${key}`, () => store.delete(key));
    written = false;
    return { key, bytes: PROBE_BYTES, writeMs, readMs, deleteMs };
  } finally {
    if (written) await store.delete(key).catch(() => undefined);
  }
}
