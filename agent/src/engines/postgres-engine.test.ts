import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pickTool } from './postgres-engine.js';

// Uses the real client tools from Debian's packages (postgresql-client-15 here).
const haveClient = existsSync('/usr/lib/postgresql/15/bin/pg_dump');

describe.runIf(haveClient)('pickTool', () => {
  it('picks the pg_dump of the server’s own major version', async () => {
    const t = await pickTool('pg_dump', 15);
    expect(t.major).toBe(15);
    expect(t.path).toMatch(/pg_dump$/);
  });

  it('takes a newer pg_dump for an older server', async () => {
    const t = await pickTool('pg_dump', 12);
    expect(t.major).toBeGreaterThanOrEqual(15);
  });

  it('refuses a server newer than every pg_dump, saying what to install', async () => {
    await expect(pickTool('pg_dump', 99)).rejects.toThrow(
      /server is PostgreSQL 99 .*install postgresql-client-99/,
    );
  });
});

describe('pickTool and a pg_dump that changes', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dbb-tool-'));
  const runs = path.join(dir, 'runs');
  const tool = path.join(dir, 'pg_dump');
  const savedPath = process.env.PATH;
  // A stand-in pg_dump that counts how often it is asked for its version.
  const install = (version: string) => {
    writeFileSync(tool, `#!/bin/sh\necho run >> '${runs}'\necho 'pg_dump (PostgreSQL) ${version}'\n`);
    chmodSync(tool, 0o755);
  };
  const count = () => (existsSync(runs) ? readFileSync(runs, 'utf8').split('\n').filter(Boolean).length : 0);
  process.env.PATH = `${dir}:${savedPath}`;
  afterAll(() => {
    process.env.PATH = savedPath;
    rmSync(dir, { recursive: true, force: true });
  });

  it('asks a tool for its version once, and again after the file changes', async () => {
    install('77.1');
    expect((await pickTool('pg_dump', 77)).path).toBe(tool);
    expect(count()).toBe(1);
    expect((await pickTool('pg_dump', 77)).version).toMatch(/77\.1/);
    expect(count()).toBe(1);
    install('78.0 (upgraded)');
    const t = await pickTool('pg_dump', 78);
    expect(t).toMatchObject({ path: tool, major: 78 });
    expect(t.version).toMatch(/upgraded/);
    expect(count()).toBe(2);
    await expect(pickTool('pg_dump', 77)).resolves.toMatchObject({ major: 78 });
  });
});
