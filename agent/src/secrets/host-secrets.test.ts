import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TargetSpec } from '@dbbackup/proto';
import { afterAll, describe, expect, it } from 'vitest';
import { HostSecrets, SecretRefused } from './host-secrets.js';

const dir = mkdtempSync(path.join(tmpdir(), 'dbb-hostsec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const stateDir = path.join(dir, 'state');
mkdirSync(path.join(stateDir, 'keys'), { recursive: true });
writeFileSync(path.join(stateDir, 'keys', 'signing.jwk.json'), '{"d":"private"}');
symlinkSync(path.join(stateDir, 'keys', 'signing.jwk.json'), path.join(dir, 'innocent-looking'));
writeFileSync(path.join(dir, 'pw.txt'), 'from-file\n');
const file = path.join(dir, 'secrets.json');
writeFileSync(
  file,
  JSON.stringify({
    pg: { password: 'pg-pw', allow: ['/var/run/postgresql', '127.0.0.1:5432'] },
    filed: { passwordFile: path.join(dir, 'pw.txt'), allow: ['127.0.0.1:6379'] },
    sneaky: { passwordFile: path.join(dir, 'innocent-looking'), allow: ['127.0.0.1:6379'] },
  }),
);

const target = (over: Partial<TargetSpec>): TargetSpec =>
  ({
    id: 't1',
    engine: 'postgresql',
    name: 'n',
    connection: { host: '127.0.0.1', port: 5432, database: 'd' },
    secretRef: { kind: 'secret', name: 'pg' },
    options: { compression: 'zstd' },
    ...over,
  }) as TargetSpec;

const secrets = (legacyBindings: Record<string, string | null> = {}) =>
  new HostSecrets({
    file,
    env: { DBBACKUP_SECRET_CACHE: 'env-pw', DBBACKUP_SECRET_CACHE_ALLOW: '127.0.0.1:6380' },
    stateDir,
    legacyBindings,
  });

describe('host secrets', () => {
  it('gives a declared secret only to a destination it is bound to', () => {
    const h = secrets();
    expect(h.passwordFor(target({}))).toBe('pg-pw');
    expect(h.passwordFor(target({ connection: { host: '/var/run/postgresql', database: 'd' } }))).toBe(
      'pg-pw',
    );
    expect(h.passwordFor(target({ connection: { database: 'd' } }))).toBe('pg-pw');
    expect(() =>
      h.passwordFor(target({ connection: { host: '10.0.0.9', port: 5432, database: 'd' } })),
    ).toThrow(/may not be sent to 10.0.0.9:5432/);
    expect(() =>
      h.passwordFor(target({ connection: { host: '127.0.0.1', port: 5433, database: 'd' } })),
    ).toThrow(SecretRefused);
    expect(() => h.passwordFor(target({ secretRef: { kind: 'secret', name: 'nope' } }))).toThrow(
      /no secret named nope/,
    );
  });

  it('reads secrets declared in the environment and from files, never from the state directory', () => {
    const h = secrets();
    const redis = (name: string, port: number) =>
      target({
        engine: 'redis',
        connection: { host: '127.0.0.1', port },
        secretRef: { kind: 'secret', name },
      });
    expect(h.passwordFor(redis('cache', 6380))).toBe('env-pw');
    expect(h.passwordFor(redis('filed', 6379))).toBe('from-file');
    expect(() => h.passwordFor(redis('sneaky', 6379))).toThrow(/state directory/);
  });

  it('keeps an older reference working only for the target and destination bound at upgrade', () => {
    const legacy = target({ secretRef: { kind: 'env', name: 'PGPASSWORD' } });
    expect(() => secrets().passwordFor(legacy)).toThrow(/no longer accepted for new targets/);
    const h = secrets({ t1: '127.0.0.1:5432' });
    expect(h.passwordFor(legacy)).toBeUndefined();
    expect(() =>
      h.passwordFor({ ...legacy, connection: { host: '10.0.0.9', port: 5432, database: 'd' } }),
    ).toThrow(/bound to 127.0.0.1:5432 when the agent was upgraded/);
    const keys = target({
      secretRef: { kind: 'passfile', path: path.join(stateDir, 'keys', 'signing.jwk.json') },
    });
    expect(() => h.passwordFor(keys)).toThrow(/state directory/);
  });
});
