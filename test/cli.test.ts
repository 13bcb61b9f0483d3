import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type ControlPlane, cleanupAll, REPO_ROOT, startAgent, trackDir, waitFor } from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, fingerprint, pgPort, seedDatabase } from './backup-support.js';
import { controlPlane, getAgent } from './support.js';

/** The dbbackup CLI as a real process against a live control plane. */
const CLI = path.join(REPO_ROOT, 'packages/cli/bin/dbbackup');
let cp: ControlPlane;
let home: string;
let source: string;

function cli(args: string[], env: Record<string, string> = {}, input?: string) {
  return new Promise<{ code: number; out: string; err: string }>((resolve) => {
    const child = execFile(
      CLI,
      args,
      { env: { PATH: process.env.PATH ?? '', HOME: home, ...env }, timeout: 120_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout, err: stderr }),
    );
    child.stdin?.end(input ?? '');
  });
}
const json = <T>(r: { out: string }) => JSON.parse(r.out) as T;

beforeAll(async () => {
  cp = await controlPlane();
  home = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-cli-home-')));
  const agent = await startAgent(cp);
  await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
  const s = await cp.api<{ id: string }>('POST', '/api/v1/storage', {
    kind: 'local',
    name: 'disk',
    directory: path.join(home, 'backups'),
  });
  source = await createDb();
  await seedDatabase(source, 1);
  const t = await cp.api<{ id: string; detail?: string }>('POST', `/api/v1/agents/${agent.id}/targets`, {
    engine: 'postgresql',
    name: 'shop',
    connection: { host: '127.0.0.1', port: pgPort(), database: source, user: 'postgres' },
    storageId: s.body.id,
  });
  expect(t.status, t.body.detail).toBe(201);
});
afterAll(cleanupAll);

describe('dbbackup CLI', () => {
  it('logs in with a token and saves it owner-only', async () => {
    const r = await cli(['login', '--server', cp.url, '--token', cp.adminToken]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/as initial-admin \(admin\)/);
    const file = path.join(home, '.config/dbbackup/cli.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ server: cp.url, token: cp.adminToken });
  });

  it('backs up, restores into a new database and verifies, with --json output', async () => {
    const b = await cli(['backup', 'shop', '--wait', '--json']);
    expect(b.code, b.err).toBe(0);
    const job = json<{ state: string; result: { backupId: string; sizeBytes: number } }>(b);
    expect(job.state).toBe('succeeded');
    expect(job.result.sizeBytes).toBeGreaterThan(0);

    const list = await cli(['backups', 'ls', '--target', 'shop', '--json']);
    expect(json<{ id: string }[]>(list).map((x) => x.id)).toContain(job.result.backupId);

    const copy = `${source}_copy`;
    const r = await cli([
      'restore',
      job.result.backupId,
      '--to',
      copy,
      '--on-conflict',
      'create',
      '--wait',
      '--json',
    ]);
    expect(r.code, r.err).toBe(0);
    expect(json<{ state: string }>(r).state).toBe('succeeded');
    expect(await fingerprint(copy)).toEqual(await fingerprint(source));

    const v = await cli(['verify', '--target', 'shop', '--latest', '--wait', '--json']);
    expect(v.code, v.err).toBe(0);
    expect(json<{ state: string; type: string }>(v)).toMatchObject({ state: 'succeeded', type: 'verify' });
  });

  it('reads the fleet as JSON: status, agents, targets, alerts', async () => {
    const s = json<{ agents: Record<string, number>; targets: number }>(await cli(['status', '--json']));
    expect(s.agents.online).toBe(1);
    expect(s.targets).toBe(1);
    const agents = json<{ status: string }[]>(await cli(['agents', 'ls', '--json']));
    expect(agents.map((a) => a.status)).toEqual(['online']);
    const targets = json<{ name: string }[]>(await cli(['targets', 'ls', '--json']));
    expect(targets.map((t) => t.name)).toEqual(['shop']);
    expect(json<unknown[]>(await cli(['alerts', 'ls', '--json']))).toEqual([]);
    const token = await cli(['enroll-token', 'create', '--label', 'env=cli']);
    expect(token.out).toMatch(
      new RegExp(`^curl -fsSL ${cp.url}/install.sh \\| sudo sh -s -- --token dbb_enr_`),
    );
    const audit = await cli(['audit', 'export']);
    expect(
      audit.out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).action),
    ).toContain('POST /api/v1/targets/:id/backups');
  });

  it('api: any call below /api/v1 with the saved session, as the dashboard shows it', async () => {
    const targets = json<{ items: { id: string; name: string }[] }>(await cli(['api', 'GET', '/targets']));
    const shop = targets.items.find((t) => t.name === 'shop')!;
    const put = await cli([
      'api',
      'PUT',
      `/targets/${shop.id}/retention`,
      '--data',
      '{"policy":{"keepLast":7}}',
    ]);
    expect(put.code, put.err).toBe(0);
    expect(json<{ policy: unknown }>(put).policy).toEqual({ keepLast: 7 });
    expect(
      json<{ policy: unknown }>(await cli(['api', 'get', `/targets/${shop.id}/retention`])).policy,
    ).toEqual({
      keepLast: 7,
    });
    // Bad input: a usage error naming it, nothing sent.
    for (const args of [
      ['api', 'FETCH', '/targets'],
      ['api', 'GET', 'targets'],
      ['api', 'GET', '//evil.example/x'],
      ['api', 'GET', '/../auth/me'],
      ['api', 'PUT', `/targets/${shop.id}/retention`, '--data', '{not json'],
    ]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toMatch(/^dbbackup: api: /);
    }
    const refused = await cli([
      'api',
      'PUT',
      `/targets/${shop.id}/retention`,
      '--data',
      '{"policy":{"keepLast":0}}',
    ]);
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(/keepLast/);
    expect(
      json<{ policy: unknown }>(await cli(['api', 'GET', `/targets/${shop.id}/retention`])).policy,
    ).toEqual({
      keepLast: 7,
    });
    await cli(['api', 'PUT', `/targets/${shop.id}/retention`, '--data', '{"policy":{}}']);
  });

  it('exit codes tell usage errors, failures and not found apart, with the server detail', async () => {
    const usage = await cli(['backup']);
    expect(usage.code).toBe(2);
    expect((await cli(['frobnicate'])).code).toBe(2);
    expect((await cli(['status', '--bogus-flag'])).code).toBe(2);
    const missing = await cli(['backup', 'no-such-target']);
    expect(missing.code).toBe(3);
    expect(missing.err).toMatch(/no target named "no-such-target"/);
    const gone = await cli(['restore', '00000000-0000-4000-8000-000000000000', '--wait']);
    expect(gone.code).toBe(3);
    expect(gone.err).toMatch(/Not Found: backup not found/);
    const nowhere = await cli([
      'restore',
      '00000000-0000-4000-8000-000000000000',
      '--target',
      'no-such-target',
    ]);
    expect(nowhere.code).toBe(3);
    expect(nowhere.err).toMatch(/no target named "no-such-target"/);
    const bad = await cli(['cleanup', 'shop', '--older-than', 'forever', '--dry-run']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/olderThan/);
    const denied = await cli(['agents', 'ls'], { DBBACKUP_TOKEN: 'dbb_api_wrong' });
    expect(denied.code).toBe(4);
    const failed = await cli([
      'restore',
      (json<{ id: string }[]>(await cli(['backups', 'ls', '--json']))[0] as { id: string }).id,
      '--to',
      source,
      '--wait',
    ]);
    expect(failed.code).toBe(1);
    expect(failed.out).toMatch(/restore failed: .*not empty/);
  });

  it('logs in with a user name and password, and refreshes its session by itself', async () => {
    await cp.api('POST', '/api/v1/users', {
      username: 'dba',
      password: 'a long enough password',
      role: 'viewer',
    });
    const r = await cli(['login', '--server', cp.url, '--username', 'dba'], {}, 'a long enough password\n');
    expect(r.code, r.err).toBe(0);
    const saved = JSON.parse(readFileSync(path.join(home, '.config/dbbackup/cli.json'), 'utf8'));
    expect(saved.refreshToken).toMatch(/^dbb_rft_/);
    // An access token that no longer works: the CLI refreshes and carries on.
    const stale = { ...saved, token: `${saved.token.slice(0, -4)}AAAA` };
    const { writeFileSync } = await import('node:fs');
    writeFileSync(path.join(home, '.config/dbbackup/cli.json'), JSON.stringify(stale), { mode: 0o600 });
    const ls = await cli(['targets', 'ls', '--json']);
    expect(ls.code, ls.err).toBe(0);
    expect(
      JSON.parse(readFileSync(path.join(home, '.config/dbbackup/cli.json'), 'utf8')).refreshToken,
    ).not.toBe(saved.refreshToken);
    // A viewer may not start a backup: exit 4 with the reason.
    const denied = await cli(['backup', 'shop']);
    expect(denied.code).toBe(4);
    expect(denied.err).toMatch(/needs the operator role/);
  });
});
