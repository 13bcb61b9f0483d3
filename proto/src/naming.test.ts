import { describe, expect, it } from 'vitest';
import { backupObjectPath } from './naming.js';

describe('backupObjectPath', () => {
  it('follows the documented layout', () => {
    const r = backupObjectPath({
      env: 'prod',
      agentName: 'db1',
      dbType: 'postgresql',
      dbName: 'shop',
      app: 'shop-main',
      at: new Date('2026-03-04T05:06:07Z'),
      id: 'ab12cd34ef56',
      ext: 'pgdump.zst.enc',
    });
    expect(r.relative).toBe(
      'prod/db1/postgresql/shop/2026/03/shop-main_postgresql_shop_20260304T050607Z_ab12cd34ef56.pgdump.zst.enc',
    );
  });

  it('never lets a name climb out of its folder', () => {
    const r = backupObjectPath({
      env: '../..',
      agentName: 'a/b',
      dbType: 'postgresql',
      dbName: '../../etc/passwd',
      app: 'x',
      at: new Date(0),
      id: '1',
      ext: 'pgdump',
    });
    expect(r.relative.split('/')).toHaveLength(7);
    expect(r.relative).not.toContain('..');
  });
});
