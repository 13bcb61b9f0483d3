import { constants } from 'node:fs';
import {
  link,
  lstat,
  lutimes,
  mkdir,
  open,
  readlink,
  chmod as setMode,
  symlink,
  utimes,
} from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { AgentError } from '../agent-error.js';

/**
 * Extracting a tar stream into a new directory, refusing before it is written every entry
 * that would land outside: absolute names, `..`, symlinks or hard links pointing out, and
 * any path through a symlink (one planted earlier in the same archive included).
 */

export type Counts = { files: number; directories: number; symlinks: number };

type Entry = AsyncIterable<unknown> & { header: tar.Header; resume(): unknown };
type DirTime = { p: string; mode: number; mtime: Date };

/**
 * Where a symlink made in `dir` (relative to `root`) pointing at `to` really leads,
 * resolved against the links already extracted: a reason when it leaves `root`
 * (`l -> .` then `x -> l/..`), else undefined. A `..` after a component that does not
 * exist yet is refused too: a link extracted later could turn it into a way out.
 */
export async function linkEscape(root: string, dir: string, to: string): Promise<string | undefined> {
  const stack = dir.split('/').filter((p) => p !== '' && p !== '.');
  let pending = to.split('/');
  let hops = 0;
  let unresolved = false;
  while (pending.length) {
    const p = pending.shift() as string;
    if (p === '' || p === '.') continue;
    if (p === '..') {
      if (unresolved) return `'..' after a path not extracted yet`;
      if (!stack.length) return 'it climbs above the destination';
      stack.pop();
      continue;
    }
    if (unresolved) {
      stack.push(p);
      continue;
    }
    const at = path.join(root, ...stack, p);
    const st = await lstat(at).catch(() => undefined);
    if (st?.isSymbolicLink()) {
      if (++hops > 40) return 'too many links';
      const next = await readlink(at);
      if (path.isAbsolute(next))
        return `it goes through ${path.relative(root, at)}, a link to an absolute path`;
      pending = [...next.split('/'), ...pending];
      continue;
    }
    if (!st) unresolved = true;
    stack.push(p);
  }
  return undefined;
}

/** The checks that keep an entry inside `root`; returns the path to write, or throws naming the entry. */
async function safePath(root: string, name: string): Promise<string | undefined> {
  const refuse = (why: string) => new AgentError('unsafe-entry', `refusing archive entry "${name}": ${why}`);
  if (name.includes('\0')) throw refuse('its name contains a NUL byte');
  if (name.startsWith('/') || /^[A-Za-z]:[\\/]/.test(name)) throw refuse('absolute path');
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw refuse("'..' in its path");
  if (!parts.length) return undefined; // the archive's root itself
  let cur = root;
  for (const p of parts.slice(0, -1)) {
    cur = path.join(cur, p);
    const st = await lstat(cur).catch(() => undefined);
    if (!st) await mkdir(cur, { mode: 0o700 });
    else if (st.isSymbolicLink()) throw refuse(`its parent ${path.relative(root, cur)} is a symlink`);
    else if (!st.isDirectory()) throw refuse(`its parent ${path.relative(root, cur)} is not a directory`);
  }
  return path.join(root, ...parts);
}

async function drain(entry: Entry) {
  for await (const _ of entry) {
    // skip
  }
}

/** Extract one entry (its parents checked by safePath); counts what was made. */
async function extractEntry(
  root: string,
  entry: Entry,
  target: string,
  counts: Counts,
  dirTimes: DirTime[],
  log: (m: string) => void,
) {
  const h = entry.header;
  const name = h.name;
  const existing = await lstat(target).catch(() => undefined);
  const mode = (h.mode ?? 0o644) & 0o7777;
  const mtime = h.mtime ?? new Date();
  const refuse = (why: string) => new AgentError('unsafe-entry', `refusing archive entry "${name}": ${why}`);
  const taken = 'a file, directory or link of that name is already there';
  switch (h.type) {
    case 'directory':
      if (existing && !existing.isDirectory()) throw refuse('a non-directory of that name is already there');
      if (!existing) await mkdir(target, { mode: 0o700 });
      dirTimes.push({ p: target, mode, mtime });
      counts.directories++;
      return drain(entry);
    case 'file':
    case 'contiguous-file': {
      if (existing) throw refuse(taken);
      // O_EXCL | O_NOFOLLOW: never through a symlink, never over something else.
      const fh = await open(
        target,
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
        0o600,
      );
      await pipeline(entry, fh.createWriteStream());
      await setMode(target, mode);
      await utimes(target, mtime, mtime);
      counts.files++;
      return;
    }
    case 'symlink': {
      const to = h.linkname ?? '';
      if (!to || path.isAbsolute(to)) throw refuse(`symlink to an absolute path (${to})`);
      const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(name), to));
      if (resolved === '..' || resolved.startsWith('../')) throw refuse(`symlink pointing outside (${to})`);
      const why = await linkEscape(root, path.posix.dirname(name), to);
      if (why) throw refuse(`symlink pointing outside (${to}): ${why}`);
      if (existing) throw refuse(taken);
      await symlink(to, target);
      await lutimes(target, mtime, mtime).catch(() => {});
      counts.symlinks++;
      return drain(entry);
    }
    case 'link': {
      const to = h.linkname ?? '';
      const source = await safePath(root, to).catch(() => {
        throw refuse(`hard link to ${to}, outside the archive`);
      });
      const st = source ? await lstat(source).catch(() => undefined) : undefined;
      if (!source || !st?.isFile())
        throw refuse(`hard link to ${to}, which is not a file extracted from this archive`);
      if (existing) throw refuse(taken);
      await link(source, target);
      counts.files++;
      return drain(entry);
    }
    default:
      log(`${name}: ${h.type} entries are not restored`);
      return drain(entry);
  }
}

export async function extractInto(root: string, input: Readable, log: (m: string) => void): Promise<Counts> {
  const counts: Counts = { files: 0, directories: 0, symlinks: 0 };
  const dirTimes: DirTime[] = [];
  const ex = tar.extract();
  const feeding = pipeline(input, ex);
  const extracting = (async () => {
    for await (const entry of ex) {
      const target = await safePath(root, entry.header.name).catch(async (err) => {
        entry.resume();
        throw err;
      });
      if (target) await extractEntry(root, entry, target, counts, dirTimes, log);
      else await drain(entry);
    }
  })();
  try {
    await Promise.all([feeding, extracting]);
  } catch (err) {
    input.destroy();
    ex.destroy();
    await Promise.allSettled([feeding, extracting]);
    throw err;
  }
  // Directories last and deepest first: writing into them changed their mtimes.
  for (const d of dirTimes.reverse()) {
    await setMode(d.p, d.mode);
    await utimes(d.p, d.mtime, d.mtime);
  }
  return counts;
}
