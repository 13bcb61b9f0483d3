import { type BackupMeta, chainAncestors } from '@dbbackup/proto';
import { describe, expect, it } from 'vitest';

const meta = (backupId: string, parent?: string) =>
  ({
    backupId,
    engineMeta: parent
      ? { kind: 'physical', incremental: 'true', parentBackupId: parent }
      : { kind: 'physical' },
  }) as unknown as BackupMeta;

describe('retention of incremental chains', () => {
  const metas = [
    meta('f1'),
    meta('i1', 'f1'),
    meta('i2', 'i1'),
    meta('f2'),
    meta('j1', 'f2'),
    meta('orphan', 'gone'),
  ];

  it('keeps every backup a kept incremental one is built on, back to its full backup', () => {
    expect([...chainAncestors(metas, ['i2'])].sort()).toEqual(['f1', 'i1']);
    expect([...chainAncestors(metas, ['j1', 'f1'])].sort()).toEqual(['f2']);
  });

  it('keeps nothing for full backups, unknown ids, or a chain whose parent is gone', () => {
    expect(chainAncestors(metas, ['f1', 'f2', 'nope', 'orphan']).size).toBe(0);
  });
});
