import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import type { TargetSpec } from '@dbbackup/proto';
import { afterAll, describe, expect, it } from 'vitest';
import { HostSecrets, setHostSecrets } from '../secrets/host-secrets.js';
import {
  mongoAuth,
  mongodbEngine,
  mongodumpArgs,
  mongorestoreArgs,
  parseDumpCounts,
  parseRestoreCounts,
} from './mongodb-engine.js';

const target = (over: Partial<TargetSpec> = {}): TargetSpec =>
  ({
    id: 't',
    engine: 'mongodb',
    name: 'm',
    connection: { host: '127.0.0.1', port: 27017, database: 'shop' },
    secretRef: { kind: 'none' },
    options: { compression: 'zstd' },
    ...over,
  }) as TargetSpec;

const onPath = (bin: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

describe('MongoDB command construction (MongoDB is not in Debian: no server runs here)', () => {
  it('dumps one database as an archive on stdout, one collection at most', () => {
    expect(mongodumpArgs(target())).toEqual(['--archive', '--quiet=false', '--db=shop']);
    expect(mongodumpArgs(target({ options: { compression: 'zstd', collections: ['shop.orders'] } }))).toEqual(
      ['--archive', '--quiet=false', '--db=shop', '--collection=orders'],
    );
    expect(() =>
      mongodumpArgs(target({ options: { compression: 'zstd', collections: ['a.x', 'a.y'] } })),
    ).toThrow(/one collection/);
    expect(() =>
      mongodumpArgs(target({ options: { compression: 'zstd', collections: ['other.x'] } })),
    ).toThrow(/<database>\.<collection> of shop/);
  });

  it('restores into another database by renaming namespaces, --drop for clean, collections by --nsInclude', () => {
    expect(
      mongorestoreArgs('shop', { database: 'shop_copy', conflict: 'clean', tables: ['orders'] }),
    ).toEqual([
      '--archive',
      '--stopOnError',
      '--drop',
      '--nsFrom=shop.*',
      '--nsTo=shop_copy.*',
      '--nsInclude=shop.orders',
    ]);
    expect(mongorestoreArgs('shop', { database: 'shop', conflict: 'fail' })).toEqual([
      '--archive',
      '--stopOnError',
    ]);
  });

  it('puts a password in a 0600 config file for the tool, never on its command line, and removes it', async () => {
    // A secret declared on the host, bound to this target's destination.
    setHostSecrets(
      new HostSecrets({
        file: '/nonexistent/secrets.json',
        env: { DBBACKUP_SECRET_MONGO: 'pw-with-"quotes"', DBBACKUP_SECRET_MONGO_ALLOW: '127.0.0.1:27017' },
        stateDir: tmpdir(),
      }),
    );
    const { args, cleanup } = await mongoAuth(target({ secretRef: { kind: 'secret', name: 'mongo' } }));
    expect(args.join(' ')).not.toContain('pw-with');
    const file = args.find((a) => a.startsWith('--config='))!.slice('--config='.length);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toBe('password: "pw-with-\\"quotes\\""\n');
    await cleanup();
    expect(() => statSync(file)).toThrow();
    await expect(mongoAuth(target({ secretRef: { kind: 'secret', name: 'not-declared' } }))).rejects.toThrow(
      /no secret named not-declared/,
    );
    // Elsewhere than its binding, it is refused before anything connects.
    await expect(
      mongoAuth(
        target({
          connection: { host: '10.0.0.1', port: 27017, database: 'shop' },
          secretRef: { kind: 'secret', name: 'mongo' },
        }),
      ),
    ).rejects.toThrow(/may not be sent to 10.0.0.1:27017/);
  });

  it('reads document counts from the tools’ reports', () => {
    expect(
      parseDumpCounts(
        '2026-11-21T10:00:00.000+0000\twriting shop.orders to archive on stdout\n2026-11-21T10:00:00.100+0000\tdone dumping shop.orders (1200 documents)\n2026-11-21T10:00:00.100+0000\tdone dumping shop.users (1 document)\n',
      ),
    ).toEqual(
      new Map([
        ['shop.orders', 1200],
        ['shop.users', 1],
      ]),
    );
    expect(
      parseRestoreCounts('1201 document(s) restored successfully. 0 document(s) failed to restore.'),
    ).toEqual({
      restored: 1201,
      failed: 0,
    });
    expect(parseRestoreCounts('nothing')).toBeUndefined();
  });

  it('verify refuses a stream that is not a mongodump archive', async () => {
    await expect(mongodbEngine.list(Readable.from([Buffer.from('PGDMP....')]))).rejects.toThrow(
      /not a mongodump archive/,
    );
    await expect(
      mongodbEngine.list(Readable.from([Buffer.from([0x6d, 0xe2, 0x99, 0x81, 1, 2, 3])])),
    ).resolves.toEqual({
      entries: 1,
    });
  });
});

/** Runs only where mongod, mongodump, mongorestore and mongosh are installed; reported as skipped otherwise. */
const haveMongo = ['mongod', 'mongodump', 'mongorestore', 'mongosh'].every(onPath);
describe.skipIf(!haveMongo)('MongoDB round trip against a real mongod', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dbb-mongo-'));
  const port = 27000 + Math.floor(Math.random() * 900);
  const mongod = haveMongo
    ? spawn('mongod', ['--dbpath', dir, '--port', String(port), '--bind_ip', '127.0.0.1'], {
        stdio: 'ignore',
      })
    : undefined;
  afterAll(() => {
    mongod?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('dumps and restores a database under another name with the same document counts', async () => {
    const t = target({ connection: { host: '127.0.0.1', port, database: 'shop' } });
    await new Promise((r) => setTimeout(r, 3000));
    execFileSync('mongosh', [
      '--quiet',
      `mongodb://127.0.0.1:${port}/shop`,
      '--eval',
      'db.orders.insertMany([...Array(100).keys()].map(i => ({i})))',
    ]);
    const dump = await mongodbEngine.dump(t, () => {});
    const copy = new PassThrough();
    dump.stdout!.pipe(copy);
    await mongodbEngine.restore(t, copy, { database: 'shop_copy', conflict: 'fail' }, () => {});
    await dump.done;
    const tables = await dump.tables;
    expect(tables).toEqual([{ table: 'shop.orders', rows: 100, exact: true }]);
    expect(await mongodbEngine.postRestoreCheck(t, 'shop_copy', tables)).toEqual([]);
  });
});
