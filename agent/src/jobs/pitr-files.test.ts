import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkEmptyDirectory } from './pitr-files.js';

const root = mkdtempSync(path.join(tmpdir(), 'dbb-pitr-files-'));
const allowed = path.join(root, 'restores');
const outside = path.join(root, 'elsewhere');
mkdirSync(allowed);
mkdirSync(outside);
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('where a point-in-time restore may create its data directory', () => {
  it('takes a new directory, or an empty one, under an allowed directory', async () => {
    await expect(checkEmptyDirectory(path.join(allowed, 'new'), [allowed])).resolves.toBeUndefined();
    mkdirSync(path.join(allowed, 'empty'));
    await expect(checkEmptyDirectory(path.join(allowed, 'empty'), [allowed])).resolves.toBeUndefined();
  });

  it('refuses a place outside, also through a link, and names the setting', async () => {
    await expect(checkEmptyDirectory(path.join(outside, 'x'), [allowed])).rejects.toThrow(
      /DBBACKUP_RESTORE_DIRS/,
    );
    symlinkSync(outside, path.join(allowed, 'link'));
    await expect(checkEmptyDirectory(path.join(allowed, 'link', 'x'), [allowed])).rejects.toThrow(
      /not in a directory this host allows/,
    );
    // A sibling whose name merely starts with an allowed one is not inside it.
    mkdirSync(`${allowed}-2`);
    await expect(checkEmptyDirectory(path.join(`${allowed}-2`, 'x'), [allowed])).rejects.toThrow(
      /DBBACKUP_RESTORE_DIRS/,
    );
  });

  it('refuses a non-empty directory, a file, a link in its place and a missing parent', async () => {
    mkdirSync(path.join(allowed, 'used'));
    writeFileSync(path.join(allowed, 'used', 'keep'), 'x');
    await expect(checkEmptyDirectory(path.join(allowed, 'used'), [allowed])).rejects.toThrow(/not empty/);
    writeFileSync(path.join(allowed, 'file'), 'x');
    await expect(checkEmptyDirectory(path.join(allowed, 'file'), [allowed])).rejects.toThrow(
      /not a directory/,
    );
    symlinkSync(path.join(allowed, 'empty'), path.join(allowed, 'dirlink'));
    await expect(checkEmptyDirectory(path.join(allowed, 'dirlink'), [allowed])).rejects.toThrow(
      /not a directory/,
    );
    await expect(checkEmptyDirectory(path.join(allowed, 'no', 'such'), [allowed])).rejects.toThrow(
      /does not exist/,
    );
  });
});
