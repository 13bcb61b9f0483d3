import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import {
  basebackupArgs,
  type ChainState,
  chainMeta,
  combineArgs,
  commitChainState,
  manifestTap,
  planBaseBackup,
  readChainState,
} from './postgres-incremental.js';

const last: ChainState = {
  backupId: 'b2',
  metaKey: 'k/b2.meta.json',
  chainRootId: 'b1',
  chainLength: 2,
  manifest: '/state/physical/t/b2.manifest',
};
const ok = {
  fullEvery: 4,
  serverVersionNum: 170002,
  toolMajor: 17,
  summarizeWal: true,
  last,
  lastStillStored: true,
};

describe('incremental base backups (PostgreSQL 17): the plan', () => {
  it('is incremental against the newest committed base backup while the chain is shorter than asked', () => {
    const p = planBaseBackup(ok);
    expect(p).toEqual({ mode: 'incremental', parent: last, chainLength: 3 });
    expect(basebackupArgs(p)).toContain('--incremental=/state/physical/t/b2.manifest');
    expect(chainMeta(p)).toEqual({
      incremental: 'true',
      parentBackupId: 'b2',
      chainRootId: 'b1',
      chainLength: '3',
    });
  });

  it('is full, saying why, whenever one condition fails', () => {
    const why = (o: Partial<typeof ok>) => {
      const p = planBaseBackup({ ...ok, ...o });
      expect(p.mode).toBe('full');
      expect(basebackupArgs(p).some((a) => a.startsWith('--incremental'))).toBe(false);
      expect(chainMeta(p)).toEqual({});
      return (p as { reason: string }).reason;
    };
    expect(why({ fullEvery: undefined })).toMatch(/not asked for/);
    expect(why({ serverVersionNum: 160004 })).toMatch(/need PostgreSQL 17 or newer \(server 16/);
    expect(why({ toolMajor: 16 })).toMatch(/pg_basebackup 16/);
    expect(why({ summarizeWal: false })).toMatch(/summarize_wal = 'on'/);
    expect(why({ last: undefined })).toMatch(/no earlier base backup/);
    expect(why({ lastStillStored: false })).toMatch(/b2 is no longer in storage/);
    expect(why({ last: { ...last, chainLength: 4 } })).toMatch(/chain holds 4 base backups/);
  });

  it('streams one tar with the WAL fetched into it, and combines oldest first into the output', () => {
    expect(basebackupArgs({ mode: 'full', reason: '' })).toEqual([
      '-D',
      '-',
      '-F',
      'tar',
      '-X',
      'fetch',
      '--checkpoint=fast',
      '--no-password',
      '-v',
    ]);
    expect(combineArgs(['/p/0', '/p/1', '/p/2'], '/data')).toEqual(['-o', '/data', '/p/0', '/p/1', '/p/2']);
    expect(() => combineArgs(['/p/0'], '/data')).toThrow(/at least one incremental/);
  });
});

describe('incremental base backups: the manifest kept for the next one', () => {
  async function baseTar(manifest: string) {
    const pack = tar.pack();
    pack.entry({ name: 'backup_label' }, 'START WAL LOCATION: 0/2000028\n');
    pack.entry({ name: 'base/1/1259' }, Buffer.alloc(300_000, 7));
    pack.entry({ name: 'backup_manifest' }, manifest);
    pack.finalize();
    const parts: Buffer[] = [];
    for await (const c of pack) parts.push(c as Buffer);
    return Buffer.concat(parts);
  }

  it('passes the tar through unchanged and keeps its backup_manifest; commit makes it the chain state', async () => {
    const state = mkdtempSync(path.join(tmpdir(), 'dbb-inc-'));
    const bytes = await baseTar('{"PostgreSQL-Backup-Manifest-Version": 2}');
    const tap = await manifestTap(state, 'target-1', 'one');
    const out: Buffer[] = [];
    // In small odd chunks: tar headers split across chunks.
    const chunks = Array.from({ length: Math.ceil(bytes.length / 777) }, (_, i) =>
      bytes.subarray(i * 777, (i + 1) * 777),
    );
    await pipeline(
      Readable.from(chunks),
      tap.through,
      new Writable({
        write(c, _e, done) {
          out.push(c);
          done();
        },
      }),
    );
    expect(Buffer.concat(out).equals(bytes)).toBe(true);
    await tap.captured();
    expect(readFileSync(tap.file, 'utf8')).toBe('{"PostgreSQL-Backup-Manifest-Version": 2}');

    await commitChainState(state, 'target-1', tap.file, {
      backupId: 'b9',
      metaKey: 'k/b9.meta.json',
      chainRootId: 'b9',
      chainLength: 1,
    });
    const s = await readChainState(state, 'target-1');
    expect(s).toMatchObject({ backupId: 'b9', chainLength: 1, chainRootId: 'b9' });
    expect(readFileSync(s!.manifest, 'utf8')).toContain('Manifest-Version');
    // A second backup's manifest replaces the first; a tap of a backup that never commits is cleared at the next.
    const tap2 = await manifestTap(state, 'target-1', 'two');
    await pipeline(
      Readable.from([await baseTar('second')]),
      tap2.through,
      new Writable({ write: (_c, _e, d) => d() }),
    );
    await commitChainState(state, 'target-1', tap2.file, {
      backupId: 'b10',
      metaKey: 'k/b10.meta.json',
      chainRootId: 'b9',
      chainLength: 2,
    });
    await manifestTap(state, 'target-1', 'three');
    expect(readdirSync(path.join(state, 'physical', 'target-1')).sort()).toEqual([
      'b10.manifest',
      'chain.json',
    ]);
    expect(await readChainState(state, 'other')).toBeUndefined();
    rmSync(state, { recursive: true, force: true });
  });
});
