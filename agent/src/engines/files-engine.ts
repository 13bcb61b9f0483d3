import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, readdir, readlink, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import picomatch from 'picomatch';
import tar from 'tar-stream';
import { AgentError } from '../agent-error.js';
import type { DumpHandle, Engine, Mismatch, TableStat } from './engine.js';
import { type Counts, extractInto } from './tar-extract.js';

/**
 * A directory tree as a tar stream (tar-stream, in the agent's process): regular
 * files, directories (empty ones too), symlinks kept as links, hard links as
 * links; modes and mtimes kept; sockets, FIFOs and devices left out (logged).
 *
 * A restore writes into a new directory beside the destination and refuses,
 * before writing it, every entry that would land outside: absolute names, `..`,
 * symlinks or hard links pointing out, and any path through a symlink (one
 * planted earlier in the same archive included). Only a fully extracted tree
 * is moved into place, so a refused archive leaves nothing behind.
 */

const counted = (c: Counts): TableStat[] => [
  { table: 'directories', rows: c.directories, exact: true },
  { table: 'files', rows: c.files, exact: true },
  { table: 'symlinks', rows: c.symlinks, exact: true },
];

function excluder(patterns: string[] | undefined): (rel: string) => boolean {
  if (!patterns?.length) return () => false;
  const m = picomatch(patterns, { dot: true, basename: true });
  return (rel) => m(rel);
}

/** Walk `root` depth-first in name order, yielding paths relative to it (posix separators). */
async function* walk(
  root: string,
  excluded: (rel: string) => boolean,
  rel = '',
): AsyncGenerator<{ rel: string; abs: string }> {
  const names = (await readdir(path.join(root, rel))).sort();
  for (const name of names) {
    const r = rel ? `${rel}/${name}` : name;
    if (excluded(r)) continue;
    const abs = path.join(root, r);
    yield { rel: r, abs };
    const st = await lstat(abs).catch(() => undefined);
    if (st?.isDirectory()) yield* walk(root, excluded, r);
  }
}

async function packTree(
  root: string,
  exclude: string[] | undefined,
  pack: tar.Pack,
  counts: Counts,
  log: (m: string) => void,
): Promise<void> {
  const excluded = excluder(exclude);
  const seen = new Map<string, string>(); // dev:ino -> first name, for hard links
  const add = (header: Partial<tar.Header> & { name: string }, body?: Readable) =>
    new Promise<void>((resolve, reject) => {
      const entry = pack.entry(header as tar.Header, (err) => (err ? reject(err) : resolve()));
      if (body) pipeline(body, entry).catch(reject);
    });
  for await (const { rel, abs } of walk(root, excluded)) {
    const st = await lstat(abs).catch(() => undefined);
    if (!st) continue; // gone since it was listed
    const base = { name: rel, mode: st.mode & 0o7777, mtime: st.mtime, uid: st.uid, gid: st.gid };
    if (st.isDirectory()) {
      counts.directories++;
      await add({ ...base, type: 'directory' });
    } else if (st.isSymbolicLink()) {
      counts.symlinks++;
      await add({ ...base, type: 'symlink', linkname: await readlink(abs) });
    } else if (st.isFile()) {
      counts.files++;
      const id = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? seen.get(id) : undefined;
      if (first) {
        await add({ ...base, type: 'link', linkname: first });
        continue;
      }
      if (st.nlink > 1) seen.set(id, rel);
      const size = st.size;
      // A file that changes while it is read: the header's size wins; short files are zero-padded.
      const body = new PassThrough();
      let got = 0;
      const src = size > 0 ? createReadStream(abs, { start: 0, end: size - 1 }) : undefined;
      (async () => {
        try {
          if (src)
            for await (const c of src) {
              got += (c as Buffer).length;
              if (!body.write(c)) await new Promise((r) => body.once('drain', r));
            }
          if (got < size) {
            log(`${rel} shrank while it was read: padded with zeros to its listed ${size} bytes`);
            body.write(Buffer.alloc(size - got));
          }
          body.end();
        } catch (err) {
          body.destroy(err as Error);
        }
      })();
      await add({ ...base, type: 'file', size }, body);
    } else {
      log(`${rel}: not a file, directory or symlink (socket, FIFO or device): left out`);
    }
  }
}

async function countTree(root: string): Promise<Counts> {
  const c: Counts = { files: 0, directories: 0, symlinks: 0 };
  for await (const { abs } of walk(root, () => false)) {
    const st = await lstat(abs);
    if (st.isDirectory()) c.directories++;
    else if (st.isSymbolicLink()) c.symlinks++;
    else if (st.isFile()) c.files++;
  }
  return c;
}

export const filesEngine: Engine = {
  id: 'files',
  formatExtension: 'tar',
  restoresInProcess: true,

  async testConnection(t) {
    const dir = t.connection.path!;
    const st = await lstat(dir).catch((err: Error) => {
      throw new AgentError('connect-failed', `cannot read ${dir}: ${err.message}`);
    });
    if (!st.isDirectory()) throw new AgentError('connect-failed', `${dir} is not a directory`);
    await readdir(dir).catch((err: Error) => {
      throw new AgentError('connect-failed', `cannot list ${dir}: ${err.message}`);
    });
    return { serverVersion: 'filesystem', toolVersion: 'tar-stream (ustar/pax)', toolPath: 'built-in' };
  },

  async dump(t, log) {
    const root = t.connection.path!;
    await this.testConnection(t);
    const pack = tar.pack();
    const counts: Counts = { files: 0, directories: 0, symlinks: 0 };
    const out = new PassThrough({ highWaterMark: 1024 * 1024 });
    const packed = packTree(root, t.options.exclude, pack, counts, log).then(
      () => pack.finalize(),
      (err: Error) => {
        pack.destroy(err);
        throw new AgentError('read-failed', `reading ${root}: ${err.message}`);
      },
    );
    const streamed = pipeline(pack, out);
    const done = Promise.all([packed, streamed]).then(() => undefined);
    done.catch((err) => out.destroy(err));
    const tables = done.then(() => counted(counts));
    tables.catch(() => {});
    log(`archiving ${root}${t.options.exclude?.length ? ` without ${t.options.exclude.join(', ')}` : ''}`);
    return {
      stdout: out,
      done,
      serverVersion: 'filesystem',
      toolVersion: 'tar-stream',
      tables,
    } satisfies DumpHandle;
  },

  async list(input) {
    const ex = tar.extract();
    let entries = 0;
    const feeding = pipeline(input, ex);
    for await (const entry of ex) {
      entries++;
      for await (const _ of entry) {
        // drain
      }
    }
    await feeding;
    if (entries === 0) throw new AgentError('empty-dump', 'the archive has no entries');
    return { entries };
  },

  async restore(_t, input, o, log) {
    if (typeof input === 'function') throw new AgentError('internal', 'the files engine restores in-process');
    if (o.tables?.length)
      throw new AgentError('unsupported', 'restoring single tables is supported for PostgreSQL only');
    const dest = path.resolve(o.database);
    const st = await lstat(dest).catch(() => undefined);
    if (st) {
      if (!st.isDirectory()) throw new AgentError('target-exists', `${dest} exists and is not a directory`);
      if (o.conflict === 'create')
        throw new AgentError('target-exists', `${dest} exists (conflict policy create)`);
      if (o.conflict === 'fail' && (await readdir(dest)).length)
        throw new AgentError(
          'target-not-empty',
          `${dest} is not empty (conflict policy fail); use clean or another directory`,
        );
    }
    await mkdir(path.dirname(dest), { recursive: true });
    const tmp = path.join(
      path.dirname(dest),
      `.${path.basename(dest)}.dbbackup-${randomBytes(4).toString('hex')}`,
    );
    await mkdir(tmp, { mode: 0o700 });
    try {
      const c = await extractInto(tmp, input, log);
      log(`extracted ${c.files} files, ${c.directories} directories, ${c.symlinks} symlinks`);
      if (st) {
        const old = `${tmp}.old`;
        await rename(dest, old);
        await rename(tmp, dest);
        await rm(old, { recursive: true, force: true });
      } else await rename(tmp, dest);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  },

  async postRestoreCheck(_t, database, expected) {
    const actual = counted(await countTree(database));
    const out: Mismatch[] = [];
    for (const e of expected) {
      const a = actual.find((x) => x.table === e.table);
      if (a && a.rows !== e.rows) out.push({ table: e.table, expected: e.rows, actual: a.rows });
    }
    return out;
  },
};
