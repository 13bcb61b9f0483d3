import type { Command } from '@dbbackup/proto';
import { authenticateSegments, IntegrityError } from '../pipeline/segmented-gcm.js';
import { openStore } from '../storage/open-store.js';
import { every, type JobContext } from './job-context.js';
import { keyFor } from './pitr-files.js';

type WalVerifyCommand = Extract<Command, { kind: 'wal.verify' }>;

/**
 * Check a WAL chain in storage: each file is there at its catalogued size and every
 * segment of it authenticates under its own data key. Reports what is missing and what
 * is corrupt by name; the control plane turns them into gaps of the recovery window.
 */
export async function runWalVerify(cmd: WalVerifyCommand, ctx: JobContext) {
  const store = await openStore(cmd.walStorage);
  const missing: string[] = [];
  const corrupt: { name: string; reason: string }[] = [];
  let checked = 0;
  let bytes = 0;
  const stop = every(1000, () => ctx.progress('verify-wal', checked, cmd.files.length));
  try {
    for (const f of cmd.files) {
      checked++;
      const size = await store.size(f.objectKey);
      if (size === undefined) {
        missing.push(f.name);
        continue;
      }
      if (size !== f.sizeBytes) {
        corrupt.push({ name: f.name, reason: `${size} bytes in storage, ${f.sizeBytes} catalogued` });
        continue;
      }
      const key = await keyFor(f.wrappedKeyForAgent, `wal/${f.name}`, ctx);
      try {
        const chunks = store.readReused?.(f.objectKey) ?? (await store.read(f.objectKey));
        await authenticateSegments(chunks, key, f.sizeBytes);
        bytes += size;
      } catch (err) {
        if (!(err instanceof IntegrityError)) throw err;
        corrupt.push({ name: f.name, reason: err.message });
      } finally {
        key.fill(0);
      }
    }
  } finally {
    stop();
  }
  for (const name of missing) ctx.log('error', `WAL file ${name} is missing from storage`);
  for (const c of corrupt) ctx.log('error', `WAL file ${c.name} does not authenticate: ${c.reason}`);
  ctx.log(
    'info',
    `checked ${checked} WAL files (${bytes} bytes authenticated): ${missing.length} missing, ${corrupt.length} corrupt`,
  );
  return { checked, missing, corrupt };
}
