import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
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
