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

describe('a dumpTool a target names', () => {
  it('runs only from a directory the host allows, judged by where its path really leads', async () => {
    const { allowedTool } = await import('./postgres-engine.js');
    const { mkdtempSync, symlinkSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const d = mkdtempSync(path.join(tmpdir(), 'dbb-tooldir-'));
    const tool = path.join(d, 'bin', 'pg_dump');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(path.dirname(tool));
    writeFileSync(tool, '#!/bin/sh\n', { mode: 0o755 });
    expect(allowedTool(tool, [path.join(d, 'bin')])).toBe(tool);
    expect(() => allowedTool(tool, ['/usr/bin'])).toThrow(/not in a directory this host allows/);
    // A link from an allowed directory to elsewhere is judged by its target.
    const allowed = path.join(d, 'allowed');
    mkdirSync(allowed);
    symlinkSync(tool, path.join(allowed, 'pg_dump'));
    expect(() => allowedTool(path.join(allowed, 'pg_dump'), [allowed])).toThrow(/not in a directory/);
    expect(() => allowedTool('/nonexistent/pg_dump', ['/nonexistent'])).toThrow(/does not exist/);
    expect(allowedTool('pg_dump', [])).toBe('pg_dump');
  });
});
