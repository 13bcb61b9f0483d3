import { describe, expect, it } from 'vitest';
import { restoreDestinationProblem, TargetSpec, targetDbName } from './targets.js';

const base = { id: 't', name: 'n', secretRef: { kind: 'none' } };

describe('target specs per engine', () => {
  it('requires what each engine needs, naming the field', () => {
    expect(
      TargetSpec.safeParse({ ...base, engine: 'postgresql', connection: {} }).error?.issues[0]?.message,
    ).toMatch(/connection.database is required/);
    expect(
      TargetSpec.safeParse({ ...base, engine: 'sqlite', connection: { database: 'x' } }).error?.issues[0]
        ?.message,
    ).toMatch(/connection.path/);
    expect(
      TargetSpec.safeParse({ ...base, engine: 'files', connection: { path: 'relative/dir' } }).success,
    ).toBe(false);
    expect(
      TargetSpec.safeParse({ ...base, engine: 'redis', connection: { host: '127.0.0.1', port: 6379 } })
        .success,
    ).toBe(true);
    expect(TargetSpec.safeParse({ ...base, engine: 'oracle', connection: {} }).success).toBe(false);
  });

  it('accepts only pg_dump or ysql_dump as a dump tool', () => {
    const t = (dumpTool: string) =>
      TargetSpec.safeParse({
        ...base,
        engine: 'postgresql',
        connection: { database: 'd' },
        options: { dumpTool },
      }).success;
    expect(t('ysql_dump')).toBe(true);
    expect(t('/opt/yugabyte/postgres/bin/ysql_dump')).toBe(true);
    expect(t('pg_dump')).toBe(true);
    expect(t('/bin/sh')).toBe(false);
    expect(t('ysql_dump; rm -rf /')).toBe(false);
  });

  it('checks a restore destination per engine', () => {
    expect(restoreDestinationProblem('postgresql', undefined)).toMatch(/required/);
    // A name is an identifier: never a path, a connection string or an option.
    for (const bad of [
      'a/b',
      'dbname=prod',
      'host=x dbname=prod',
      '-dprod',
      '--init-command=x',
      'postgresql://h/p',
      'a b',
      '.hidden',
    ])
      expect(restoreDestinationProblem('mysql', bad), bad).toMatch(/plain name/);
    for (const good of ['prod', 'prod_copy', 'shop-2026', 'a.b', 'x$1'])
      expect(restoreDestinationProblem('postgresql', good), good).toBeUndefined();
    expect(restoreDestinationProblem('sqlite', 'relative.db')).toMatch(/absolute path/);
    expect(restoreDestinationProblem('files', '/srv/../etc')).toMatch(/'\.\.'/);
    expect(restoreDestinationProblem('files', '/srv/restore')).toBeUndefined();
    expect(restoreDestinationProblem('redis', undefined)).toBeUndefined();
    expect(restoreDestinationProblem('redis', 'db0')).toMatch(/do not name a database/);
  });

  it('names what a target backs up for object keys', () => {
    expect(targetDbName({ engine: 'sqlite', connection: { path: '/var/lib/app/data.sqlite3' } })).toBe(
      'data',
    );
    expect(targetDbName({ engine: 'files', connection: { path: '/srv/www/' } })).toBe('www');
    expect(targetDbName({ engine: 'redis', connection: { port: 6380 } })).toBe('redis-6380');
    expect(targetDbName({ engine: 'mysql', connection: { database: 'shop' } })).toBe('shop');
  });
});
