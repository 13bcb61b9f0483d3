import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { setPriority } from 'node:os';
import { Readable, type Stream, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  BackupMeta,
  type BackupMetaSummary,
  type Command,
  forAgentBindingProblem,
  restoreDestinationProblem,
  type TargetSpec,
} from '@dbbackup/proto';
import { AgentError } from '../agent-error.js';
import type { RestoreOptions } from '../engines/engine.js';
import { engineFor } from '../engines/registry.js';
import { childSuccess } from '../pipeline/child-exit.js';
import { decompressor, procIo } from '../pipeline/compression.js';
import { KeyBindingError, unwrapDataKey } from '../pipeline/data-key.js';
import { DecryptStream } from '../pipeline/decrypt-stream.js';
import { Meter } from '../pipeline/meter.js';
import { authenticateSegments, decryptSegments, IntegrityError } from '../pipeline/segmented-gcm.js';
import { type ObjectStore, readAll } from '../storage/object-store.js';
import { openStore } from '../storage/open-store.js';
import { every, type JobContext } from './job-context.js';

type VerifyCommand = Extract<Command, { kind: 'verify' }>;
type RestoreCommand = Extract<Command, { kind: 'restore' }>;
type DrillCommand = Extract<Command, { kind: 'drill' }>;

/**
 * The data key the control plane re-wrapped for this command, used only if it is
 * bound to this command's backup and this agent and has not expired.
 */
async function commandDataKey(
  cmd: VerifyCommand | RestoreCommand | DrillCommand,
  ctx: JobContext,
): Promise<Buffer> {
  try {
    return await unwrapDataKey(cmd.wrappedKeyForAgent, await ctx.encryptionKey(), (h) =>
      forAgentBindingProblem(h, { bid: cmd.backupId, aid: ctx.agentId }, Math.floor(Date.now() / 1000)),
    );
  } catch (err) {
    if (err instanceof KeyBindingError) throw new AgentError('key-binding', err.message, { cause: err });
    throw err;
  }
}

const META_MAX_BYTES = 64 * 1024 * 1024;

/**
 * The full table list of a backup whose command carried a bounded summary: read
 * from its meta.json, which must be the same backup (id and checksum).
 */
async function fullTables(store: ObjectStore, meta: BackupMetaSummary): Promise<BackupMeta['tables']> {
  if (meta.tablesTotal === undefined || meta.tablesTotal <= meta.tables.length) return meta.tables;
  const key = `${meta.objectKey}.meta.json`;
  const size = await store.size(key);
  if (size === undefined || size > META_MAX_BYTES)
    throw new AgentError('meta-unreadable', `${key} is ${size === undefined ? 'missing' : 'too large'}`);
  const full = BackupMeta.safeParse(JSON.parse((await readAll(store, key)).toString('utf8')));
  if (!full.success || full.data.backupId !== meta.backupId || full.data.sha256 !== meta.sha256)
    throw new AgentError('meta-mismatch', `${key} is not the metadata of backup ${meta.backupId}`);
  return full.data.tables;
}

/**
 * Wait for the stream feeding a tool and for the tool. Whichever fails first is
 * the cause: an integrity failure in the stream makes the tool fail too; a tool
 * that refuses before reading (a non-empty target, say) would otherwise leave the
 * stream stalled on backpressure for ever, so the stream is torn down then.
 */
async function settleBoth<T>(
  feed: Promise<unknown>,
  tool: Promise<T>,
  feedTail: { destroy(err?: Error): void; on(event: 'error', fn: () => void): unknown },
): Promise<T> {
  // An engine that refuses before reading leaves the tail without a reader; its error is reported below.
  feedTail.on('error', () => {});
  let first: unknown;
  let failed = false;
  const fail = (err: unknown) => {
    if (!failed) {
      failed = true;
      first = err;
    }
  };
  const f = feed.catch((err) => fail(err));
  const t = tool.catch((err) => {
    fail(err);
    feedTail.destroy(err as Error);
    return undefined;
  });
  const [, value] = await Promise.all([f, t]);
  if (failed) throw first;
  return value as T;
}

function isBrokenPipe(err: unknown): boolean {
  const e = err as { code?: string; signal?: string; message?: string };
  // Child stdio pipes are socket pairs here, so a reader gone away shows as ECONNRESET too.
  return (
    e?.code === 'EPIPE' ||
    e?.code === 'ECONNRESET' ||
    e?.signal === 'SIGPIPE' ||
    /EPIPE|ECONNRESET|SIGPIPE|premature close|Connection reset by peer|Broken pipe/i.test(
      String(e?.message ?? ''),
    )
  );
}

/**
 * The restore tool is started first; zstd -d writes straight into its stdin and
 * the agent writes the authenticated, decrypted (still compressed) bytes into
 * zstd. The decompressed dump never passes through the agent, and the agent
 * never holds a readable end of those pipes.
 */
async function restoreThroughZstd(
  src: Readable,
  restore: (into: (toolStdin: Writable) => void) => Promise<void>,
  onBytes: (f: () => number) => void,
) {
  let feed: Promise<void> | undefined;
  let unzipped: Promise<void> | undefined;
  let feedErr: unknown;
  let zErr: unknown;
  let kill = () => {};
  const restoring = restore((toolStdin) => {
    const z = spawn('zstd', ['-d', '-q', '-c'], { stdio: ['pipe', toolStdin as unknown as Stream, 'pipe'] });
    kill = () => z.kill('SIGKILL');
    // The database server applying the dump is the restore's bottleneck; zstd -d is many
    // times faster than it, so it yields the CPU to the server (bench:backup, random rows:
    // e/d medians 1.065 and 1.071 at nice 10 against 1.127 and 1.286 without).
    try {
      if (z.pid) setPriority(z.pid, 10);
    } catch {
      // It has already exited (its error comes through childSuccess) or the host refuses: no matter.
    }
    let written = 0;
    onBytes(() => {
      written = procIo(z.pid)?.wchar ?? written;
      return written;
    });
    z.stdin?.on('error', () => {});
    unzipped = childSuccess(z, 'zstd -d').catch((err) => {
      zErr = err;
    });
    feed = pipeline(src, z.stdin!).catch((err) => {
      feedErr ??= err;
    });
  });
  try {
    await restoring;
  } catch (err) {
    src.destroy();
    kill();
    await Promise.all([feed, unzipped]);
    // An integrity failure in the stream is the cause; the tool's failure its consequence.
    throw feedErr instanceof IntegrityError ? feedErr : err;
  }
  await Promise.all([feed, unzipped]);
  // The tool succeeded; if it stopped reading early (a selective restore), the pipe behind it broke: not a failure.
  if (feedErr && !isBrokenPipe(feedErr)) throw feedErr;
  if (zErr && !isBrokenPipe(zErr)) throw zErr;
}

/** Each segment's verified plaintext pieces, one after another. */
async function* flatten(segments: AsyncIterable<Buffer[]>): AsyncGenerator<Buffer> {
  for await (const pieces of segments) yield* pieces;
}

/**
 * Before the restore tool sees a byte: the stored object has the size the backup
 * recorded, and every one of its segments authenticates under the backup's data key
 * (tags bound to the header, the segment's position and the last-segment flag), so a
 * flipped, truncated, reordered or substituted object is refused with the target
 * untouched. This reads the object once more than the restore itself; AES-GCM costs
 * a fraction of SHA-256 here, which verify still compares with the metadata.
 */
async function checkObject(store: ObjectStore, meta: BackupMeta, key: Buffer, ctx: JobContext) {
  const size = await store.size(meta.objectKey);
  if (size !== meta.sizeBytes) {
    throw new AgentError(
      'size-mismatch',
      `stored object is ${size === undefined ? 'missing' : `${size} bytes`}, metadata says ${meta.sizeBytes} bytes: truncated or replaced`,
    );
  }
  let read = 0;
  const stop = every(1000, () => ctx.progress('authenticate', read, 0));
  try {
    const chunks = store.readReused?.(meta.objectKey) ?? (await store.read(meta.objectKey));
    return await authenticateSegments(chunks, key, meta.sizeBytes, (n) => (read = n));
  } catch (err) {
    if (err instanceof IntegrityError) throw new AgentError('integrity-failed', err.message, { cause: err });
    throw err;
  } finally {
    stop();
  }
}

/**
 * Verify: stream the object back, check size and SHA-256, authenticate and
 * decrypt every segment, decompress, and have the engine list the dump.
 */
export async function runVerify(cmd: VerifyCommand, ctx: JobContext) {
  const { meta } = cmd;
  const store = await openStore(cmd.storage);
  const key = await commandDataKey(cmd, ctx);
  const sha = new Meter({ sha256: true });
  const decrypt = new DecryptStream(key);
  key.fill(0);
  const plain = new Meter();
  const engine = await engineFor(cmd.target);
  const stop = every(1000, () => ctx.progress('verify', sha.bytes, plain.bytes));
  let entries: number;
  try {
    const src = await store.read(meta.objectKey);
    const listed = engine.list(plain);
    const piped = pipeline(src, sha, decrypt, decompressor(meta.compressAlgo), plain);
    entries = (await settleBoth(piped, listed, plain)).entries;
  } catch (err) {
    throw new AgentError(
      'verify-failed',
      `verify failed: ${(err as Error).message} (after ${sha.bytes} stored bytes, ${plain.bytes} dump bytes)`,
      { cause: err },
    );
  } finally {
    stop();
  }
  if (sha.bytes !== meta.sizeBytes)
    throw new AgentError(
      'size-mismatch',
      `stored object is ${sha.bytes} bytes, metadata says ${meta.sizeBytes}`,
    );
  const digest = sha.digest();
  if (digest !== meta.sha256)
    throw new AgentError('checksum-mismatch', `SHA-256 is ${digest}, metadata says ${meta.sha256}`);
  ctx.log(
    'info',
    `verified: ${sha.bytes} bytes, ${decrypt.segments} segments authenticated, ${entries} dump entries`,
  );
  return { sizeBytes: sha.bytes, sha256: digest, segments: decrypt.segments, entries };
}

/**
 * Restore: first prove the stored object is whole and authentic (its size, and
 * every segment's tag; see checkObject), so a damaged backup never reaches the
 * restore tool; then decrypt (authenticating every segment again), decompress and
 * restore in a single transaction, and compare row counts with the metadata.
 */
export async function runRestore(cmd: RestoreCommand, ctx: JobContext) {
  // The agent checks the destination itself: a name is an identifier, never an option.
  // (Redis restores into the target's own instance: the control plane names it itself.)
  const destination =
    cmd.target.engine === 'redis' ? undefined : restoreDestinationProblem(cmd.target.engine, cmd.database);
  if (destination) throw new AgentError('bad-destination', destination);
  const r = await restoreAndCheck(
    cmd,
    cmd.target,
    {
      database: cmd.database,
      conflict: cmd.conflict,
      tables: cmd.tables,
      engineMeta: cmd.meta.engineMeta,
    },
    ctx,
  );
  if (r.mismatches.length) {
    const list = r.mismatches
      .map((m) => `${m.table}: expected ${m.expected}, found ${m.actual ?? 'no table'}`)
      .join('; ');
    ctx.log('error', `post-restore check: row counts differ: ${list}`);
    throw new AgentError('post-restore-mismatch', `restored, but row counts differ from the backup: ${list}`);
  }
  const wanted = cmd.tables?.length
    ? r.tables.filter((t) => cmd.tables?.some((w) => t.table === w || t.table.endsWith(`.${w}`)))
    : r.tables;
  const checked = wanted.filter((t) => t.exact).length;
  ctx.log(
    'info',
    `restored ${cmd.meta.backupId} into ${cmd.database}; row counts match for ${checked} tables`,
  );
  return { database: cmd.database, tablesChecked: checked, bytes: r.bytes };
}

/**
 * Restore a backup through `target` into `options.database` and compare row counts with its
 * metadata: first prove the stored object is whole and authentic (checkObject), then decrypt
 * (authenticating every segment again), decompress and restore. Returns the backup's table
 * counts, the tables whose counts differ, and the bytes restored.
 */
export async function restoreAndCheck(
  cmd: RestoreCommand | DrillCommand,
  target: TargetSpec,
  options: RestoreOptions,
  ctx: JobContext,
) {
  const { meta } = cmd;
  const store = await openStore(cmd.storage);
  ctx.log('info', `checking ${meta.objectKey} before restoring`);
  const key = await commandDataKey(cmd, ctx);
  let readBytes = 0;
  let src: Readable;
  try {
    const segments = await checkObject(store, meta, key, ctx);
    ctx.log('info', `${meta.sizeBytes} bytes, ${segments} segments authenticated`);
    // The restore reads it again through the same authenticated decryption (a segment
    // changed since the check still fails), from one reused buffer where the store can.
    const chunks = store.readReused?.(meta.objectKey) ?? (await store.read(meta.objectKey));
    src = Readable.from(flatten(decryptSegments(chunks, key, meta.sizeBytes, (n) => (readBytes = n))), {
      objectMode: false,
      highWaterMark: 1024 * 1024,
    });
  } finally {
    key.fill(0);
  }
  const engine = await engineFor(target);
  const plain = new Meter();
  let plainBytes = () => plain.bytes;
  const stop = every(1000, () => ctx.progress('restore', readBytes, plainBytes()));
  const log = (m: string) => ctx.log('info', m);
  try {
    if (meta.compressAlgo === 'zstd' && !engine.restoresInProcess) {
      await restoreThroughZstd(
        src,
        (into) => engine.restore(target, into, options, log),
        (f) => {
          plainBytes = f;
        },
      );
    } else {
      const restoring = engine.restore(target, plain, options, log);
      await settleBoth(pipeline(src, decompressor(meta.compressAlgo), plain), restoring, plain);
    }
  } finally {
    stop();
    src.destroy();
  }
  const tables = await fullTables(store, meta);
  const mismatches = await engine.postRestoreCheck(target, options.database, tables, options.tables);
  return { tables, mismatches, bytes: plainBytes() };
}

/** The backup's plaintext dump (authenticated, decrypted, decompressed) written to `file`. */
export async function restoreToFile(cmd: DrillCommand, file: string, ctx: JobContext) {
  const { meta } = cmd;
  const store = await openStore(cmd.storage);
  const key = await commandDataKey(cmd, ctx);
  let src: Readable;
  try {
    await checkObject(store, meta, key, ctx);
    const chunks = store.readReused?.(meta.objectKey) ?? (await store.read(meta.objectKey));
    src = Readable.from(flatten(decryptSegments(chunks, key, meta.sizeBytes)), {
      objectMode: false,
      highWaterMark: 1024 * 1024,
    });
  } finally {
    key.fill(0);
  }
  await pipeline(src, decompressor(meta.compressAlgo), createWriteStream(file, { mode: 0o600 }));
  return fullTables(store, meta);
}
