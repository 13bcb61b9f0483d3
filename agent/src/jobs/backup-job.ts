import os from 'node:os';
import type { Duplex, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  type BackupMeta,
  type BackupResult,
  backupFileId,
  backupObjectPath,
  type Command,
  metaSigningInput,
  summariseMeta,
  targetDbName,
} from '@dbbackup/proto';
import { AgentError } from '../agent-error.js';
import { engineFor } from '../engines/registry.js';
import { COMPRESS_EXT, compressor, hasZstd, zstdCompressor } from '../pipeline/compression.js';
import { newDataKey, wrapDataKey } from '../pipeline/data-key.js';
import { Meter } from '../pipeline/meter.js';
import { DEFAULT_SEGMENT_BYTES, ENCRYPT_ALGO, EncryptStream } from '../pipeline/segmented-gcm.js';
import type { ObjectStore, ObjectWriter } from '../storage/object-store.js';
import { openStore } from '../storage/open-store.js';
import { every, type JobContext } from './job-context.js';

type BackupCommand = Extract<Command, { kind: 'backup' }>;

type Engine = Awaited<ReturnType<typeof engineFor>>;
type Dump = Awaited<ReturnType<Engine['dump']>>;
type Zstd = ReturnType<typeof zstdCompressor>;

/** The target's compression, gzip in place of zstd where this host has no zstd (said on the job's log). */
async function compressionFor(target: BackupCommand['target'], ctx: JobContext) {
  const algo = target.options.compression;
  if (algo !== 'zstd' || (await hasZstd())) return algo;
  ctx.log('warn', 'zstd is not installed on this host; compressing with gzip instead (apt-get install zstd)');
  return 'gzip' as const;
}

/**
 * Start the dump. With zstd, the compressor is spawned first and pg_dump writes straight into
 * it: the uncompressed dump never passes through the agent, and the agent never holds a
 * readable end of that pipe (so it cannot take bytes meant for zstd).
 */
async function startDump(
  engine: Engine,
  target: BackupCommand['target'],
  ctx: JobContext,
  z: Zstd | undefined,
  store: ObjectStore,
) {
  let dump: Dump;
  let fed: Promise<void> | undefined;
  const fedBytes = new Meter();
  try {
    dump = await engine.dump(target, (m) => ctx.log('info', m), z?.stdin, {
      exists: async (key) => (await store.size(key)) !== undefined,
    });
  } catch (err) {
    z?.kill();
    z?.stdin.destroy();
    throw err;
  }
  if (z && dump.stdout) {
    // An engine that reads its own output (to count rows, or because it runs in-process) hands it back: feed zstd here.
    fed = pipeline(dump.stdout, fedBytes, z.stdin);
    fed.catch(() => {});
  } else {
    // The dump tool holds its own copy of zstd's stdin now; ours is closed so zstd sees the end.
    z?.stdin.destroy();
  }
  return { dump, fed, fedBytes };
}

/** The stages between the dump and the encryption: who reads the dump, and how its bytes are counted. */
function dumpStages(
  started: Awaited<ReturnType<typeof startDump>>,
  z: Zstd | undefined,
  algo: BackupCommand['target']['options']['compression'],
  level: number | undefined,
) {
  const { dump, fed, fedBytes } = started;
  // zstd reads pg_dump's pipe itself; with gzip or none the agent reads and counts the dump.
  if (z)
    return {
      head: z.output as Readable,
      middle: [] as Duplex[],
      dumpedBytes: fed ? () => fedBytes.bytes : z.bytesIn,
      gate: new Meter({ until: Promise.all([dump.done, z.done, fed]) }),
    };
  if (!dump.stdout) throw new AgentError('internal', 'dump has no output stream');
  const counted = new Meter();
  return {
    head: dump.stdout,
    middle: [counted, compressor(algo, level)] as Duplex[],
    dumpedBytes: () => counted.bytes,
    gate: new Meter({ until: dump.done }),
  };
}

/**
 * dump stdout -> compress -> encrypt -> sha256 -> storage, with backpressure end
 * to end and nothing but bounded buffers in memory. The data object is
 * committed and its size confirmed before `<filename>.meta.json`, the commit
 * marker, is written; any failure before that leaves no object and no meta.
 */
export async function runBackup(
  cmd: BackupCommand,
  ctx: JobContext,
): Promise<BackupResult & { uploadRetries: number }> {
  const started = new Date();
  const { target, storage } = cmd;
  const engine = await engineFor(target);
  const algo = await compressionFor(target, ctx);
  const ext = `${engine.formatExtension}${COMPRESS_EXT[algo]}.enc`;
  const store = await openStore(storage);
  const { relative, filename } = backupObjectPath({
    env: cmd.naming.env,
    agentName: cmd.naming.agentName,
    dbType: target.engine,
    dbName: targetDbName(target),
    app: target.name,
    at: started,
    id: backupFileId(cmd.backupId),
    ext,
  });
  const objectKey = store.key(relative);
  const z = algo === 'zstd' ? zstdCompressor(target.options.compressionLevel) : undefined;
  const running = await startDump(engine, target, ctx, z, store);
  const { dump } = running;
  ctx.log(
    'info',
    `dumping ${targetDbName(target)} to ${storage.kind}:${objectKey} (${algo}, ${ENCRYPT_ALGO})`,
  );
  const dataKey = newDataKey();
  const wrappedKey = await wrapDataKey(dataKey, cmd.kek.publicJwk, cmd.kek.kid, {
    bid: cmd.backupId,
    aid: ctx.agentId,
    tid: target.id,
  });
  await ctx.recordUpload(storage, objectKey);
  const writer = await store.createWriter(
    objectKey,
    (uploadId) => void ctx.recordUpload(storage, objectKey, uploadId),
    dump.sizeHint,
  );
  const encrypt = new EncryptStream(dataKey, DEFAULT_SEGMENT_BYTES);
  dataKey.fill(0);
  const stages = dumpStages(running, z, algo, target.options.compressionLevel);
  const tables = await upload(ctx, stages, encrypt, writer, dump.tables);
  ctx.progress('commit', stages.dumpedBytes(), encrypt.bytesOut);
  const ended = new Date();
  const meta: BackupMeta = {
    filename,
    objectKey,
    version: 1,
    backupId: cmd.backupId,
    targetId: target.id,
    targetName: target.name,
    agentId: ctx.agentId,
    dbType: target.engine,
    dbHost: target.connection.host ?? os.hostname(),
    dbPort: target.connection.port ?? null,
    dbName: targetDbName(target),
    startTime: started.toISOString(),
    endTime: ended.toISOString(),
    durationMs: ended.getTime() - started.getTime(),
    sizeBytes: encrypt.bytesOut,
    dumpBytes: stages.dumpedBytes(),
    sha256: encrypt.digest(),
    compressAlgo: algo,
    encryptAlgo: ENCRYPT_ALGO,
    segmentBytes: DEFAULT_SEGMENT_BYTES,
    chunks: encrypt.segments,
    status: 'completed',
    wrappedKey,
    kekId: cmd.kek.kid,
    engineVersion: dump.serverVersion,
    toolVersion: dump.toolVersion,
    tables,
    ...(dump.engineMeta ? { engineMeta: dump.engineMeta } : {}),
  };
  await commitMeta(store, ctx, meta, dump.committed);
  // The result is bounded (a long table list stays in meta.json).
  return { meta: summariseMeta(meta), metaKey: `${objectKey}.meta.json`, uploadRetries: store.retries };
}

/** Stream the dump through its stages into the store; the stored size is checked before it counts. */
async function upload(
  ctx: JobContext,
  { head, middle, gate, dumpedBytes }: ReturnType<typeof dumpStages>,
  encrypt: EncryptStream,
  writer: ObjectWriter,
  tablesOf: Dump['tables'],
) {
  const stopProgress = every(1000, () => ctx.progress('upload', dumpedBytes(), encrypt.bytesOut));
  try {
    await pipeline([head, ...middle, gate, encrypt, writer.stream]);
    const tables = await tablesOf;
    const { sizeBytes } = await writer.commit();
    if (sizeBytes !== encrypt.bytesOut)
      throw new AgentError(
        'size-mismatch',
        `storage holds ${sizeBytes} bytes but ${encrypt.bytesOut} were sent`,
      );
    return tables;
  } catch (err) {
    stopProgress();
    await writer.abort().catch(() => {});
    await ctx.clearUpload();
    throw err;
  } finally {
    stopProgress();
  }
}

/** Sign and write the commit marker, last. Without it the data object is no backup: it goes. */
async function commitMeta(
  store: ObjectStore,
  ctx: JobContext,
  meta: BackupMeta,
  committed: Dump['committed'],
) {
  const { objectKey } = meta;
  // A job whose events could not be recorded is not committed: the agent could not report it.
  const fault = ctx.storageFault?.();
  if (fault) {
    await store.delete(objectKey).catch(() => {});
    await ctx.clearUpload().catch(() => {});
    throw new AgentError(
      'state-dir-full',
      `the agent could not record this job in its state directory (${fault.message}); free space there. The backup was not committed.`,
    );
  }
  // Signed, so that a meta.json planted in the bucket cannot be rescanned into the catalogue.
  meta.signature = ctx.sign(metaSigningInput(meta));
  if (ctx.crashPoint === 'before-meta') process.kill(process.pid, 'SIGKILL');
  try {
    await store.putSmall(`${objectKey}.meta.json`, Buffer.from(`${JSON.stringify(meta, null, 2)}\n`));
  } catch (err) {
    await store.delete(objectKey).catch(() => {});
    await ctx.clearUpload().catch(() => {});
    throw err;
  }
  // The upload record stays until the success is in the outbox (AgentStore.finishCommand): a
  // crash before that rolls this backup back at restart (recoverUploads), as its job failed.
  ctx.log(
    'info',
    `backup committed: ${meta.sizeBytes} bytes stored from ${meta.dumpBytes} dumped in ${meta.durationMs} ms`,
  );
  // What the next backup builds on (a PostgreSQL 17 base backup's manifest) is kept once this one is committed.
  await committed?.({ backupId: meta.backupId, metaKey: `${meta.objectKey}.meta.json` }).catch((err: Error) =>
    ctx.log('warn', `the next base backup will be full: ${err.message}`),
  );
}
