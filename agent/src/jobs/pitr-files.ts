import { execFileSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { chmod, lchown, lstat, mkdir, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type BackupMetaSummary, forAgentBindingProblem, type StorageSpec } from '@dbbackup/proto';
import { AgentError } from '../agent-error.js';
import { agentConfig } from '../config.js';
import { extractInto } from '../engines/tar-extract.js';
import { decompressor } from '../pipeline/compression.js';
import { KeyBindingError, unwrapDataKey } from '../pipeline/data-key.js';
import { decryptSegments, IntegrityError } from '../pipeline/segmented-gcm.js';
import type { ObjectStore } from '../storage/object-store.js';
import { openStore } from '../storage/open-store.js';
import { every, type JobContext } from './job-context.js';

/** Files of a point-in-time restore: keys, downloads, the new data directory and its owner. */

/** A data key re-wrapped for this agent, used only if bound to `bid`, this agent and a restore, unexpired. */
export async function keyFor(wrapped: string, bid: string, ctx: JobContext): Promise<Buffer> {
  try {
    return await unwrapDataKey(wrapped, await ctx.encryptionKey(), (h) =>
      forAgentBindingProblem(h, { bid, aid: ctx.agentId }, Math.floor(Date.now() / 1000)),
    );
  } catch (err) {
    if (err instanceof KeyBindingError) throw new AgentError('key-binding', err.message, { cause: err });
    throw err;
  }
}

async function* flatten(it: AsyncGenerator<Buffer[], number>): AsyncGenerator<Buffer> {
  for await (const parts of it) for (const p of parts) yield p;
}

/**
 * An encrypted, zstd-compressed object as its plaintext stream: each segment is
 * authenticated before its bytes go on, and the stored size must be what the
 * catalogue says (a truncated or replaced object fails before anything is written).
 */
export async function openObject(
  store: ObjectStore,
  objectKey: string,
  sizeBytes: number,
  key: Buffer,
  onRead?: (n: number) => void,
): Promise<Readable> {
  const size = await store.size(objectKey);
  if (size !== sizeBytes)
    throw new AgentError(
      'size-mismatch',
      `${objectKey} is ${size === undefined ? 'missing from storage' : `${size} bytes, the catalogue says ${sizeBytes}`}`,
    );
  const chunks = store.readReused?.(objectKey) ?? (await store.read(objectKey));
  const plain = Readable.from(flatten(decryptSegments(chunks, key, sizeBytes, onRead)), {
    objectMode: false,
    highWaterMark: 1024 * 1024,
  });
  key.fill(0);
  return plain;
}

/** Decrypt and decompress one archived WAL file into `dir` (mode 0600). */
export async function fetchWalFile(
  store: ObjectStore,
  f: { name: string; objectKey: string; sizeBytes: number; wrappedKeyForAgent: string },
  dir: string,
  ctx: JobContext,
) {
  const key = await keyFor(f.wrappedKeyForAgent, `wal/${f.name}`, ctx);
  try {
    const plain = await openObject(store, f.objectKey, f.sizeBytes, key);
    await pipeline(plain, decompressor('zstd'), createWriteStream(path.join(dir, f.name), { mode: 0o600 }));
  } catch (err) {
    if (err instanceof IntegrityError)
      throw new AgentError('integrity-failed', `WAL file ${f.name}: ${err.message}`, { cause: err });
    throw err;
  }
}

/**
 * The new data directory: under a directory this host allows restores into (judged by where
 * its parent really leads), and absent or empty; never anything else.
 */
export async function checkEmptyDirectory(dir: string, allowed = agentConfig().restoreDirs) {
  const parent = await realpath(path.dirname(dir)).catch(() => undefined);
  if (!parent)
    throw new AgentError('bad-destination', `${path.dirname(dir)} does not exist: create it first`);
  if (!allowed.some((d) => `${parent}/`.startsWith(`${d.replace(/\/+$/, '')}/`)))
    throw new AgentError(
      'not-allowed',
      `${dir} is not in a directory this host allows restores into (${allowed.join(':')}; DBBACKUP_RESTORE_DIRS)`,
    );
  const st = await lstat(dir).catch(() => undefined);
  if (!st) return;
  if (!st.isDirectory()) throw new AgentError('bad-destination', `${dir} exists and is not a directory`);
  if ((await readdir(dir)).length)
    throw new AgentError(
      'bad-destination',
      `${dir} is not empty: a restore only writes into a new, empty data directory`,
    );
}

/**
 * Who will own and run the restored cluster: the owner of the backed-up cluster's data
 * directory when it is on this host, else the `postgres` user; the agent itself when it
 * is not root (PostgreSQL refuses to run as root).
 */
export async function clusterOwner(
  sourceDataDirectory: string | undefined,
): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const st = sourceDataDirectory ? await stat(sourceDataDirectory).catch(() => undefined) : undefined;
  if (st && st.uid !== 0) return { uid: st.uid, gid: st.gid };
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    return { uid, gid };
  } catch {
    throw new AgentError(
      'no-owner',
      'the agent runs as root and there is no postgres user to run the restored cluster as',
    );
  }
}

/** Make `dir` (0700) and hand it, with everything in it, to `owner`. */
export async function ownDirectory(dir: string, owner: { uid: number; gid: number } | undefined) {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  if (!owner) return;
  await lchown(dir, owner.uid, owner.gid);
  for (const entry of await readdir(dir, { recursive: true }))
    await lchown(path.join(dir, entry), owner.uid, owner.gid);
}

/** One base backup fetched, authenticated, decrypted and unpacked into `dir`. */
export async function unpackBase(
  ref: { backupId: string; storage: StorageSpec; meta: BackupMetaSummary; wrappedKeyForAgent: string },
  dir: string,
  ctx: JobContext,
) {
  const store = await openStore(ref.storage);
  const key = await keyFor(ref.wrappedKeyForAgent, ref.backupId, ctx);
  const { meta } = ref;
  let read = 0;
  const stop = every(1000, () => ctx.progress('base-backup', read, meta.sizeBytes));
  try {
    const plain = await openObject(store, meta.objectKey, meta.sizeBytes, key, (n) => (read = n));
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const unpacked = decompressor(meta.compressAlgo);
    const counts = await Promise.all([
      pipeline(plain, unpacked),
      extractInto(dir, unpacked, (m) => ctx.log('info', m)),
    ]);
    ctx.log(
      'info',
      `base backup ${ref.backupId} unpacked: ${counts[1].files} files, ${counts[1].directories} directories`,
    );
  } finally {
    stop();
  }
}
