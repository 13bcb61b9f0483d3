import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { TargetSpec } from '@dbbackup/proto';
import { cleanupAll, type MariaDb, startMariaDb } from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mysqlEngine } from './mysql-engine.js';
import { sqliteEngine } from './sqlite-engine.js';

// A backup's contents are not trusted: a dump planted in the bucket (or taken from a
// compromised host) must restore as data and never run a command on the restoring host.
const work = mkdtempSync(path.join(tmpdir(), 'dbb-hostile-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const marker = (name: string) => path.join(work, `${name}.ran`);
const noop = () => {};

describe('a planted SQLite dump', () => {
  const target = {
    id: 't',
    engine: 'sqlite',
    name: 's',
    connection: { path: path.join(work, 'source.db') },
    secretRef: { kind: 'none' },
    options: { compression: 'none' },
  } as TargetSpec;

  it.each([
    ['.shell', (m: string) => `.shell touch ${m}`],
    ['.system', (m: string) => `.system touch ${m}`],
    ['.output', (m: string) => `.output ${m}\nSELECT 1;`],
    ['ATTACH', (m: string) => `ATTACH DATABASE '${m}' AS x; CREATE TABLE x.t(a);`],
  ])('with a %s line is refused and runs nothing', async (name, line) => {
    const m = marker(`sqlite-${name.replace(/\W/g, '')}`);
    const dest = path.join(work, `restored-${name.replace(/\W/g, '')}.db`);
    const dump = `PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE t(a);\nINSERT INTO t VALUES(1);\n${line(m)}\nCOMMIT;\n`;
    await expect(
      sqliteEngine.restore(
        target,
        Readable.from([Buffer.from(dump)]),
        { database: dest, conflict: 'create' },
        noop,
      ),
    ).rejects.toThrow(/safe mode|not authorized|prohibited/i);
    expect(existsSync(m)).toBe(false);
    expect(existsSync(dest)).toBe(false);
  });

  it('without hostile lines restores (safe mode keeps ordinary dumps working)', async () => {
    const dest = path.join(work, 'restored-ok.db');
    const dump =
      'PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE t(a);\nINSERT INTO t VALUES(1);\nCOMMIT;\n';
    await sqliteEngine.restore(
      target,
      Readable.from([Buffer.from(dump)]),
      { database: dest, conflict: 'create' },
      noop,
    );
    expect(await sqliteEngine.postRestoreCheck(target, dest, [{ table: 't', rows: 1, exact: true }])).toEqual(
      [],
    );
  });
});

describe('a planted MariaDB dump', () => {
  let maria: MariaDb;
  beforeAll(async () => {
    maria = await startMariaDb();
  });
  afterAll(cleanupAll);
  const target = () =>
    ({
      id: 't',
      engine: 'mysql',
      name: 'm',
      connection: { host: maria.socket, database: 'src', user: 'root' },
      secretRef: { kind: 'none' },
      options: { compression: 'none' },
    }) as TargetSpec;

  it.each([
    ['\\!', (m: string) => `\\! touch ${m}`],
    ['system', (m: string) => `system touch ${m}`],
    [
      '\\. (source)',
      (m: string) => {
        const script = `${m}.sql`;
        writeFileSync(script, `\\! touch ${m}\n`);
        return `\\. ${script}`;
      },
    ],
  ])('with a %s line runs nothing', async (name, line) => {
    const m = marker(`maria-${name.replace(/\W/g, '')}`);
    const db = `hostile_${name.replace(/\W/g, '') || 'x'}`;
    const dump = `CREATE TABLE t (a int);\nINSERT INTO t VALUES (1);\n${line(m)}\nINSERT INTO t VALUES (2);\n`;
    await mysqlEngine
      .restore(target(), Readable.from([Buffer.from(dump)]), { database: db, conflict: 'create' }, noop)
      .catch(() => {});
    expect(existsSync(m)).toBe(false);
  });

  it('an ordinary dump with DELIMITER blocks still restores', async () => {
    const dump = [
      'CREATE TABLE t (a int);',
      'INSERT INTO t VALUES (1),(2);',
      'DELIMITER ;;',
      'CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.a = NEW.a; END ;;',
      'DELIMITER ;',
      '',
    ].join('\n');
    await mysqlEngine.restore(
      target(),
      Readable.from([Buffer.from(dump)]),
      { database: 'plain', conflict: 'create' },
      noop,
    );
    expect(maria.sql('SELECT count(*) FROM t', 'plain')).toEqual([['2']]);
    expect(
      maria.sql("SELECT count(*) FROM information_schema.triggers WHERE trigger_schema = 'plain'"),
    ).toEqual([['1']]);
  });
});
