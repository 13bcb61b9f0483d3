import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type ControlPlane,
  cleanupAll,
  onCleanup,
  REPO_ROOT,
  type Redis,
  startAgent,
  startRedis,
  trackDir,
  waitFor,
} from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobLogs, runBackup } from './backup-support.js';
import { controlPlane, getAgent } from './support.js';

// The agent decides where its secrets may go. A secret is declared on the host, bound
// to destinations; an operator can name it but never send it elsewhere, and can name
// no file or environment variable at all. A fake server that records every byte it
// receives stands where an operator points a target.

const PASSWORD = 'Redis-Host-Secret-5d1c';
const AGENT_BIN = path.join(REPO_ROOT, 'agent/bin/dbbackup-agent');
let cp: ControlPlane;
let redis: Redis;
let agent: Awaited<ReturnType<typeof startAgent>>;
let storageId: string;
let targetId: string;
const work = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-secrets-')));
const secretsFile = path.join(work, 'etc', 'secrets.json');
const received: Buffer[] = [];
let fakePort: number;

function declare(args: string[], input?: string) {
  return execFileSync(
    AGENT_BIN,
    ['secret', 'add', ...args, '--secrets-file', secretsFile, '--state-dir', agent.stateDir],
    {
      input: input ?? '',
      env: { ...process.env, SOME_PW: 'from-the-environment' },
    },
  ).toString();
}

beforeAll(async () => {
  cp = await controlPlane();
  redis = await startRedis([`requirepass ${PASSWORD}`]);
  const fake = net.createServer((s) => {
    s.on('data', (d) => received.push(d));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => fake.listen(0, '127.0.0.1', () => r()));
  fakePort = (fake.address() as net.AddressInfo).port;
  onCleanup(() => new Promise<void>((r) => fake.close(() => r())));
  agent = await startAgent(cp, { env: { DBBACKUP_SECRETS_FILE: secretsFile } });
  await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
  // The one line a DBA runs on the host: the password on stdin, bound to the real server.
  expect(declare(['cache', '--allow', `127.0.0.1:${redis.port}`], `${PASSWORD}\n`)).toMatch(
    new RegExp(`secret cache added in .* bound to 127.0.0.1:${redis.port}`),
  );
  const s = await cp.api<{ id: string }>('POST', '/api/v1/storage', {
    kind: 'local',
    name: 'secrets',
    directory: path.join(work, 'store'),
  });
  storageId = s.body.id;
}, 120_000);
afterAll(cleanupAll);

describe('secrets declared on the host', () => {
  it('are written owner-only, outside the state directory, and a target naming one backs up', async () => {
    expect(statSync(secretsFile).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(secretsFile, 'utf8')).cache.allow).toEqual([`127.0.0.1:${redis.port}`]);
    expect(() =>
      declare([
        'x',
        '--allow',
        '127.0.0.1:1',
        '--from-file',
        path.join(agent.stateDir, 'keys', 'signing.jwk.json'),
      ]),
    ).toThrow();
    const t = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agent.id}/targets`, {
      engine: 'redis',
      name: 'cache',
      connection: { host: '127.0.0.1', port: redis.port },
      secretRef: { kind: 'secret', name: 'cache' },
      storageId,
    });
    expect(t.status, JSON.stringify(t.body)).toBe(201);
    targetId = t.body.id;
    const { job } = await runBackup(cp, targetId);
    expect(job.state, await jobLogs(cp, job.id)).toBe('succeeded');
  });

  it('never go to a host an operator points a target at: PATCH and a new target are refused, the fake server hears nothing', async () => {
    const patched = await cp.api<{ detail: string }>('PATCH', `/api/v1/targets/${targetId}`, {
      connection: { host: '127.0.0.1', port: fakePort },
    });
    expect(patched.status).toBe(422);
    expect(patched.body.detail).toMatch(new RegExp(`secret cache may not be sent to 127.0.0.1:${fakePort}`));
    const created = await cp.api<{ detail: string }>('POST', `/api/v1/agents/${agent.id}/targets`, {
      engine: 'redis',
      name: 'elsewhere',
      connection: { host: '127.0.0.1', port: fakePort },
      secretRef: { kind: 'secret', name: 'cache' },
      storageId,
    });
    expect(created.status).toBe(422);
    await new Promise((r) => setTimeout(r, 500));
    const heard = Buffer.concat(received).toString('latin1');
    expect(heard).not.toContain(PASSWORD);
    expect(heard).toBe('');
    // The target still points where it did.
    const t = await cp.api<{ connection: { port: number } }>('GET', `/api/v1/targets/${targetId}`);
    expect(t.body.connection.port).toBe(redis.port);
  });

  it('cannot be replaced by a file or environment variable an operator names (the agent’s own keys included)', async () => {
    for (const secretRef of [
      { kind: 'passfile', path: path.join(agent.stateDir, 'keys', 'signing.jwk.json') },
      { kind: 'env', name: 'HOME' },
    ]) {
      const r = await cp.api('POST', `/api/v1/agents/${agent.id}/targets`, {
        engine: 'redis',
        name: `legacy-${secretRef.kind}`,
        connection: { host: '127.0.0.1', port: fakePort },
        secretRef,
        storageId,
      });
      expect(r.status, JSON.stringify(r.body)).toBe(422);
      const p = await cp.api('PATCH', `/api/v1/targets/${targetId}`, { secretRef });
      expect(p.status).toBe(422);
    }
    expect(Buffer.concat(received).length).toBe(0);
  });

  it('a secret may come from the environment or a file the DBA names on the host, never from the state directory', async () => {
    expect(declare(['from-env', '--allow', '127.0.0.1:1', '--from-env', 'SOME_PW'])).toMatch(/added/);
    const file = JSON.parse(readFileSync(secretsFile, 'utf8'));
    expect(file['from-env']).toEqual({ env: 'SOME_PW', allow: ['127.0.0.1:1'] });
    expect(() => declare(['bad', '--allow', 'not a destination'], 'x\n')).toThrow();
    expect(() =>
      execFileSync(
        AGENT_BIN,
        [
          'secret',
          'add',
          'y',
          '--allow',
          '127.0.0.1:1',
          '--secrets-file',
          path.join(agent.stateDir, 's.json'),
          '--state-dir',
          agent.stateDir,
        ],
        {
          input: 'pw\n',
        },
      ),
    ).toThrow();
  });
});
