import {
  type ControlPlane,
  cleanupAll,
  createEnrollmentToken,
  startAgent,
  startControlPlane,
  waitFor,
} from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, getAgent, getCommand } from './support.js';

const PLANTED_DB_PASSWORD = 'PlantedDbPassw0rd-9f3a';
let cp: ControlPlane;
beforeAll(async () => {
  // The test cluster trusts local connections, so a password in the URL is accepted and ignored: a planted secret.
  const url = (await freshDatabase()).replace('postgres@', `postgres:${PLANTED_DB_PASSWORD}@`);
  cp = await startControlPlane({ databaseUrl: url });
});
afterAll(cleanupAll);

describe('secrets never reach a log line', () => {
  it('neither process logs tokens, keys or the database password, on good paths and error paths', async () => {
    const agent = await startAgent(cp);
    await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
    const enrolmentToken = await createEnrollmentToken(cp);
    // Error paths: an enrolment refused, a bad bearer token, a command that runs.
    await cp.api(
      'POST',
      '/api/v1/agents/enroll',
      { token: enrolmentToken, hostname: 'x', agentVersion: '1', signingKey: { kty: 'oct' } },
      null,
    );
    await cp.api('GET', '/api/v1/agents', undefined, 'dbb_api_this-is-a-wrong-token');
    const cmd = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agent.id}/commands`, {
      command: { kind: 'ping' },
    });
    await waitFor(async () => (await getCommand(cp, cmd.body.id)).state === 'succeeded', {
      what: 'ping done',
    });
    await agent.proc.kill('SIGTERM');

    const { readFileSync } = await import('node:fs');
    const path = await import('node:path');
    const signingKey = JSON.parse(
      readFileSync(path.join(agent.stateDir, 'keys/signing.jwk.json'), 'utf8'),
    ) as { d: string };
    const encKey = JSON.parse(
      readFileSync(path.join(agent.stateDir, 'keys/encryption.jwk.json'), 'utf8'),
    ) as { d: string };

    const cpJson = cp.proc.lines.filter((l) => l.startsWith('{'));
    const agentLines = agent.proc.lines;
    expect(cpJson.length).toBeGreaterThan(5);
    expect(agentLines.length).toBeGreaterThan(3);
    for (const secret of [
      cp.adminToken,
      enrolmentToken,
      PLANTED_DB_PASSWORD,
      signingKey.d,
      encKey.d,
      'dbb_api_this-is-a-wrong-token',
    ]) {
      expect(cpJson.filter((l) => l.includes(secret))).toEqual([]);
      expect(agentLines.filter((l) => l.includes(secret))).toEqual([]);
    }
    // No connect JWT in any line either.
    expect([...cpJson, ...agentLines].filter((l) => /eyJ[A-Za-z0-9_-]{10,}\.eyJ/.test(l))).toEqual([]);
  });

  it('a start-up failure does not print the database password', async () => {
    const { startProcess, REPO_ROOT, trackDir } = await import('@dbbackup/testkit');
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const p = startProcess(path.join(REPO_ROOT, 'control-plane/bin/dbbackup-control-plane'), [], {
      env: {
        DBBACKUP_DATABASE_URL: `postgres://app:${PLANTED_DB_PASSWORD}@127.0.0.1:1/none`,
        DBBACKUP_DATA_DIR: trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-cp-'))),
        DBBACKUP_PORT: '0',
      },
    });
    const { code } = await p.exited;
    expect(code).toBe(1);
    expect(p.lines.join('\n')).toMatch(/failed to start/);
    expect(p.lines.filter((l) => l.includes(PLANTED_DB_PASSWORD))).toEqual([]);
  });

  it('a bad configuration value stops start-up naming the variable', async () => {
    const { startProcess, REPO_ROOT } = await import('@dbbackup/testkit');
    const path = await import('node:path');
    const p = startProcess(path.join(REPO_ROOT, 'control-plane/bin/dbbackup-control-plane'), [], {
      env: { DBBACKUP_PORT: 'not-a-port', DBBACKUP_HEARTBEAT_INTERVAL_MS: '1' },
    });
    const { code } = await p.exited;
    expect(code).toBe(2);
    const out = p.lines.join('\n');
    expect(out).toMatch(/DBBACKUP_PORT/);
    expect(out).toMatch(/DBBACKUP_HEARTBEAT_INTERVAL_MS/);
  });
});
