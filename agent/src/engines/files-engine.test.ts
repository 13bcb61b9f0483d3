import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { TargetSpec } from '@dbbackup/proto';
import tar from 'tar-stream';
import { afterAll, describe, expect, it } from 'vitest';
import { filesEngine } from './files-engine.js';

type Entry = {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  linkname?: string;
  body?: string;
};

async function archive(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const ended = new Promise<void>((r) => pack.on('end', () => r()));
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      const header = {
        name: e.name,
        type: e.type ?? 'file',
        mode: 0o644,
        ...(e.linkname ? { linkname: e.linkname } : {}),
      };
      if ((e.type ?? 'file') === 'file')
        pack.entry(header, e.body ?? 'x', (err) => (err ? reject(err) : resolve()));
      else pack.entry(header, (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

/** Every path under `dir`, to prove nothing appeared outside the destination. */
function tree(dir: string, rel = ''): string[] {
  return readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((d) => {
    const r = path.join(rel, d.name);
    return d.isDirectory() && !d.isSymbolicLink() ? [r, ...tree(dir, r)] : [r];
  });
}

const sandbox = mkdtempSync(path.join(tmpdir(), 'dbb-tar-'));
afterAll(() => rmSync(sandbox, { recursive: true, force: true }));
const target = {
  id: 't',
  engine: 'files',
  name: 'f',
  connection: { path: '/' },
  secretRef: { kind: 'none' },
  options: { compression: 'none' },
} as TargetSpec;

async function restoreInto(entries: Entry[]) {
  const box = path.join(sandbox, randomUUID());
  mkdirSync(path.join(box, 'outside'), { recursive: true });
  writeFileSync(path.join(box, 'outside', 'keep.txt'), 'untouched');
  const before = tree(box);
  const dest = path.join(box, 'work', 'dest');
  const err = await filesEngine
    .restore(target, Readable.from([await archive(entries)]), { database: dest, conflict: 'fail' }, () => {})
    .then(
      () => undefined,
      (e: Error) => e,
    );
  return { err, box, dest, before, after: tree(box) };
}

describe('files restore refuses every entry that would land outside the destination', () => {
  const absolute = path.join(tmpdir(), `dbb-abs-${randomUUID()}.txt`);
  const cases: [string, Entry[], string][] = [
    ['a .. path', [{ name: '../outside/evil.txt' }], '../outside/evil.txt'],
    ['a .. in the middle', [{ name: 'a/../../outside/evil.txt' }], 'a/../../outside/evil.txt'],
    ['an absolute path', [{ name: absolute }], absolute],
    ['a symlink to an absolute path', [{ name: 'l', type: 'symlink', linkname: '/etc' }], 'l'],
    ['a symlink pointing out', [{ name: 'up', type: 'symlink', linkname: '../../outside' }], 'up'],
    ['a hard link pointing out', [{ name: 'hl', type: 'link', linkname: '../../outside/keep.txt' }], 'hl'],
    ['a hard link to an absolute path', [{ name: 'hl', type: 'link', linkname: '/etc/hostname' }], 'hl'],
    [
      'a symlink planted earlier and written through later',
      [
        { name: 'sub', type: 'directory' },
        { name: 'sub/inner', type: 'symlink', linkname: '.' },
        { name: 'sub/inner/evil.txt' },
      ],
      'sub/inner/evil.txt',
    ],
    [
      'a file written over a symlink of the same name',
      [
        { name: 'x.txt' },
        { name: 'same', type: 'symlink', linkname: 'x.txt' },
        { name: 'same', body: 'overwrite through the link' },
      ],
      'same',
    ],
    [
      'a chain of symlinks: l -> . then x -> l/.. (lexically inside, really the parent)',
      [
        { name: 'l', type: 'symlink', linkname: '.' },
        { name: 'x', type: 'symlink', linkname: 'l/..' },
      ],
      'x',
    ],
    [
      'a longer chain: a -> b, b -> c, c -> ., then y -> a/../outside',
      [
        { name: 'c', type: 'symlink', linkname: '.' },
        { name: 'b', type: 'symlink', linkname: 'c' },
        { name: 'a', type: 'symlink', linkname: 'b' },
        { name: 'y', type: 'symlink', linkname: 'a/../outside' },
      ],
      'y',
    ],
    [
      '.. through a link in a subdirectory: d/up -> .. then z -> d/up/..',
      [
        { name: 'd', type: 'directory' },
        { name: 'd/up', type: 'symlink', linkname: '..' },
        { name: 'z', type: 'symlink', linkname: 'd/up/..' },
      ],
      'z',
    ],
    [
      'a chain through a link to an absolute path is refused at the first link',
      [
        { name: 'abs', type: 'symlink', linkname: '/tmp' },
        { name: 'via', type: 'symlink', linkname: 'abs/x' },
      ],
      'abs',
    ],
    [
      "'..' after a path not extracted yet (a later link could turn it into a way out)",
      [{ name: 'later', type: 'symlink', linkname: 'notyet/..' }],
      'later',
    ],
    [
      'a hard link to a symlink (a way to reach what it points at)',
      [
        { name: 'ok', type: 'symlink', linkname: 'x' },
        { name: 'hl', type: 'link', linkname: 'ok' },
      ],
      'hl',
    ],
  ];
  for (const [what, entries, named] of cases) {
    it(what, async () => {
      const r = await restoreInto(entries);
      expect(r.err?.message).toContain(`refusing archive entry "${named}"`);
      // Nothing was written outside: the sandbox holds exactly what it held before (the
      // destination was never created, since only a complete extraction is moved into place).
      expect(r.after).toEqual(r.before.concat(['work']).sort());
      expect(existsSync(r.dest)).toBe(false);
      expect(existsSync(absolute)).toBe(false);
    });
  }

  it('a well-formed archive with an inside symlink and a hard link is restored', async () => {
    const r = await restoreInto([
      { name: 'dir', type: 'directory' },
      { name: 'dir/a.txt', body: 'hello' },
      { name: 'dir/link', type: 'symlink', linkname: 'a.txt' },
      { name: 'dir/hard', type: 'link', linkname: 'dir/a.txt' },
      { name: 'empty', type: 'directory' },
      { name: 'dir/same', type: 'symlink', linkname: '.' },
      { name: 'chain', type: 'symlink', linkname: 'dir/same/link' },
      { name: 'empty/back', type: 'symlink', linkname: '../dir/a.txt' },
    ]);
    expect(r.err).toBeUndefined();
    expect(tree(r.dest).sort()).toEqual([
      'chain',
      'dir',
      'dir/a.txt',
      'dir/hard',
      'dir/link',
      'dir/same',
      'empty',
      'empty/back',
    ]);
  });
});
