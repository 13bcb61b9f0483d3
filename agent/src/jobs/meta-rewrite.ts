import type { Command } from '@dbbackup/proto';
import { AgentError } from '../agent-error.js';
import { readAll } from '../storage/object-store.js';
import { openStore } from '../storage/open-store.js';

/**
 * Key rotation on the agent's side: replace the wrapped data key and KEK id in a
 * backup's meta.json, after checking it is that backup. One atomic put (S3
 * PutObject; local disk writes a temporary file, fsyncs and renames), so the
 * commit marker is never missing or half written; the data object is untouched.
 */
export async function rewriteMeta(c: Extract<Command, { kind: 'meta.rewrite' }>) {
  const store = await openStore(c.storage);
  // The catalogue's metaKey is the full key (the profile's prefix included).
  const key = c.metaKey;
  const body = await readAll(store, key);
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(body.toString('utf8'));
  } catch {
    throw new AgentError('bad-meta', `${c.metaKey} is not valid JSON`);
  }
  if (meta.backupId !== c.backupId || meta.sha256 !== c.sha256) {
    throw new AgentError('meta-mismatch', `${c.metaKey} is not the meta.json of backup ${c.backupId}`);
  }
  const previousKekId = meta.kekId;
  if (previousKekId === c.kekId && meta.wrappedKey === c.wrappedKey)
    return { rewritten: false, kekId: c.kekId };
  meta.wrappedKey = c.wrappedKey;
  meta.kekId = c.kekId;
  await store.putSmall(key, Buffer.from(`${JSON.stringify(meta, null, 2)}\n`));
  return { rewritten: true, kekId: c.kekId, previousKekId };
}
