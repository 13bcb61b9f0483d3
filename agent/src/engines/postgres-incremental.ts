import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import tar from 'tar-stream';

/**
 * Incremental base backups (PostgreSQL 17 and newer): `pg_basebackup --incremental=M`
 * sends only the blocks changed since the backup whose manifest M is, and
 * `pg_combinebackup` rebuilds a full data directory from the chain at restore.
 *
 * The agent keeps, per target, the manifest of its newest committed base backup and where
 * that backup sits in its chain (`chain.json` under the state directory). A base backup is
 * incremental only when all of these hold; otherwise it is full and starts a new chain:
 * - the target asks for it (`options.incrementalFullEvery`, the chain's length);
 * - server and pg_basebackup are 17 or newer, and the server summarizes WAL (`summarize_wal`);
 * - the previous backup's manifest is here and that backup is still committed in storage;
 * - the chain is shorter than `incrementalFullEvery`.
 */

/** The newest committed base backup of a target, as the next incremental one needs it. */
export interface ChainState {
  backupId: string;
  /** Its meta.json in storage: gone means the backup is gone, and the chain with it. */
  metaKey: string;
  /** The full backup the chain starts with. */
  chainRootId: string;
  /** 1 for a full backup, 2 for the first incremental after it, … */
  chainLength: number;
  /** Its backup_manifest, kept beside chain.json. */
  manifest: string;
}

export type BasePlan =
  | { mode: 'full'; reason: string }
  | { mode: 'incremental'; parent: ChainState; chainLength: number };

/** Whether this base backup is incremental, and against what; why not when it is full. */
export function planBaseBackup(o: {
  fullEvery: number | undefined;
  serverVersionNum: number;
  toolMajor: number;
  summarizeWal: boolean;
  last: ChainState | undefined;
  lastStillStored: boolean;
}): BasePlan {
  if (!o.fullEvery || o.fullEvery < 2)
    return { mode: 'full', reason: 'incremental backups are not asked for' };
  if (o.serverVersionNum < 170000 || o.toolMajor < 17)
    return {
      mode: 'full',
      reason: `incremental base backups need PostgreSQL 17 or newer (server ${Math.floor(o.serverVersionNum / 10000)}, pg_basebackup ${o.toolMajor})`,
    };
  if (!o.summarizeWal)
    return {
      mode: 'full',
      reason:
        "the server does not summarize WAL: ALTER SYSTEM SET summarize_wal = 'on'; SELECT pg_reload_conf();",
    };
  if (!o.last) return { mode: 'full', reason: 'no earlier base backup of this target is known here' };
  if (!o.lastStillStored)
    return { mode: 'full', reason: `the previous base backup ${o.last.backupId} is no longer in storage` };
  if (o.last.chainLength >= o.fullEvery)
    return {
      mode: 'full',
      reason: `the chain holds ${o.last.chainLength} base backups (options.incrementalFullEvery ${o.fullEvery})`,
    };
  return { mode: 'incremental', parent: o.last, chainLength: o.last.chainLength + 1 };
}

/** pg_basebackup's arguments: one tar to stdout, WAL fetched into it; `--incremental` against the parent's manifest. */
export function basebackupArgs(plan: BasePlan): string[] {
  const args = ['-D', '-', '-F', 'tar', '-X', 'fetch', '--checkpoint=fast', '--no-password', '-v'];
  if (plan.mode === 'incremental') args.push(`--incremental=${plan.parent.manifest}`);
  return args;
}

/** What an incremental base backup adds to its engineMeta (a full one says nothing more). */
export function chainMeta(plan: BasePlan): Record<string, string> {
  if (plan.mode === 'full') return {};
  return {
    incremental: 'true',
    parentBackupId: plan.parent.backupId,
    chainRootId: plan.parent.chainRootId,
    chainLength: String(plan.chainLength),
  };
}

/** pg_combinebackup's arguments: the chain's directories from the full backup to the newest, into `out`. */
export function combineArgs(dirs: string[], out: string): string[] {
  if (dirs.length < 2) throw new Error('a chain to combine has a full backup and at least one incremental');
  return ['-o', out, ...dirs];
}

const stateDirOf = (stateDir: string, targetId: string) => path.join(stateDir, 'physical', targetId);

export async function readChainState(stateDir: string, targetId: string): Promise<ChainState | undefined> {
  const text = await readFile(path.join(stateDirOf(stateDir, targetId), 'chain.json'), 'utf8').catch(
    () => undefined,
  );
  if (!text) return undefined;
  try {
    return JSON.parse(text) as ChainState;
  } catch {
    return undefined;
  }
}

/**
 * Pass a base backup's tar through while keeping its `backup_manifest` (pg_basebackup puts
 * it into the tar it writes to stdout) in `<state>/physical/<target>/pending-<id>`.
 * Manifests of backups that never committed are removed first.
 */
export async function manifestTap(stateDir: string, targetId: string, id: string) {
  const dir = stateDirOf(stateDir, targetId);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const f of await readdir(dir))
    if (f.startsWith('pending-')) await rm(path.join(dir, f), { force: true });
  const file = path.join(dir, `pending-${id}`);
  const ex = tar.extract();
  let captured: Promise<void> = Promise.resolve();
  ex.on('entry', (header, stream, next) => {
    if (header.name.replace(/^\.\//, '') !== 'backup_manifest') {
      stream.on('end', next);
      stream.resume();
      return;
    }
    const parts: Buffer[] = [];
    stream.on('data', (c) => parts.push(c as Buffer));
    stream.on('end', () => {
      captured = writeFile(file, Buffer.concat(parts), { mode: 0o600 });
      next();
    });
  });
  ex.on('error', () => {});
  const through = new Transform({
    transform(chunk: Buffer, _enc, done) {
      ex.write(chunk);
      done(null, chunk);
    },
    flush(done) {
      // The manifest is the tar's last entry: it is kept by the time the dump counts as read.
      ex.once('finish', () => done(null));
      ex.once('error', () => done(null));
      (ex as unknown as NodeJS.WritableStream).end();
    },
  });
  return { through, file, captured: () => captured };
}

/**
 * A base backup was committed: its manifest becomes the one the next incremental backup is
 * taken against, and older manifests go.
 */
export async function commitChainState(
  stateDir: string,
  targetId: string,
  pendingManifest: string,
  s: Omit<ChainState, 'manifest'>,
) {
  const dir = stateDirOf(stateDir, targetId);
  const manifest = path.join(dir, `${s.backupId}.manifest`);
  await rename(pendingManifest, manifest);
  const tmp = path.join(dir, 'chain.json.tmp');
  await writeFile(tmp, JSON.stringify({ ...s, manifest } satisfies ChainState), { mode: 0o600 });
  await rename(tmp, path.join(dir, 'chain.json'));
  for (const f of await readdir(dir))
    if (f !== path.basename(manifest) && f !== 'chain.json' && !f.startsWith('pending-'))
      await rm(path.join(dir, f), { force: true });
}
