import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { firstTool } from './engine-support.js';

describe('firstTool', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dbb-first-tool-'));
  const savedPath = process.env.PATH;
  process.env.PATH = `${dir}:${savedPath}`;
  afterAll(() => {
    process.env.PATH = savedPath;
    rmSync(dir, { recursive: true, force: true });
  });

  it('finds a tool installed after it was first looked for in vain', async () => {
    await expect(firstTool(['dbb-fake-dump'], 'fake')).rejects.toThrow(
      /no dbb-fake-dump .*install the fake client tools/,
    );
    const file = path.join(dir, 'dbb-fake-dump');
    writeFileSync(file, "#!/bin/sh\necho 'dbb-fake-dump 1.2.3'\n");
    chmodSync(file, 0o755);
    await expect(firstTool(['dbb-fake-dump'], 'fake')).resolves.toEqual({
      name: 'dbb-fake-dump',
      path: file,
      version: 'dbb-fake-dump 1.2.3',
    });
  });
});
