import { randomUUID } from 'node:crypto';
import { type ControlPlane, cleanupAll, createEnrollmentToken, query, startAgent } from '@dbbackup/testkit';
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlane } from './support.js';

let cp: ControlPlane;
beforeAll(async () => {
  cp = await controlPlane();
});
afterAll(cleanupAll);

async function enrolBody(token: string) {
  const { publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  return {
    token,
    hostname: `h-${randomUUID().slice(0, 8)}`,
    agentVersion: 'test',
    signingKey: await exportJWK(publicKey),
  };
}

const agentCount = async () =>
  Number((await query<{ n: string }>(cp.databaseUrl, 'SELECT count(*) AS n FROM agents'))[0]?.n);

describe('enrolment tokens', () => {
  it('work once: a reused token gets 409 and creates no agent', async () => {
    const token = await createEnrollmentToken(cp);
    const first = await cp.api('POST', '/api/v1/agents/enroll', await enrolBody(token), null);
    expect(first.status).toBe(201);
    const before = await agentCount();
    const again = await cp.api<{ type: string; detail: string }>(
      'POST',
      '/api/v1/agents/enroll',
      await enrolBody(token),
      null,
    );
    expect(again.status).toBe(409);
    expect(again.headers.get('content-type')).toContain('application/problem+json');
    expect(again.body.detail).toMatch(/already been used/);
    expect(await agentCount()).toBe(before);
  });

  it('expire: an expired token gets 401 naming the expiry', async () => {
    const token = await createEnrollmentToken(cp);
    await query(
      cp.databaseUrl,
      "UPDATE enrollment_tokens SET expires_at = now() - interval '1 second' WHERE used_at IS NULL",
    );
    const before = await agentCount();
    const r = await cp.api<{ detail: string }>('POST', '/api/v1/agents/enroll', await enrolBody(token), null);
    expect(r.status).toBe(401);
    expect(r.body.detail).toMatch(/expired at/);
    expect(await agentCount()).toBe(before);
  });

  it('raced by ten enrolments at once: exactly one agent, 409 for the rest', async () => {
    const token = await createEnrollmentToken(cp);
    const before = await agentCount();
    const bodies = await Promise.all(Array.from({ length: 10 }, () => enrolBody(token)));
    const results = await Promise.all(bodies.map((b) => cp.api('POST', '/api/v1/agents/enroll', b, null)));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(9);
    expect(await agentCount()).toBe(before + 1);
  });

  it('raced by two real agent processes: one enrols, the other exits with the reason', async () => {
    const token = await createEnrollmentToken(cp);
    const { agentCli, trackDir } = await import('@dbbackup/testkit');
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const dirs = [0, 1].map(() => trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-race-'))));
    const runs = await Promise.all(
      dirs.map((d) => agentCli(['enroll', '--server', cp.url, '--token', token], { DBBACKUP_STATE_DIR: d })),
    );
    const codes = runs.map((r) => r.code).sort();
    expect(codes).toEqual([0, 1]);
    const loser = runs.find((r) => r.code === 1);
    expect(loser?.lines.join('\n')).toMatch(/409.*already been used/);
  });

  it('unknown token gets 401', async () => {
    const r = await cp.api('POST', '/api/v1/agents/enroll', await enrolBody('dbb_enr_nonsense'), null);
    expect(r.status).toBe(401);
  });

  it('refuses a signing key that carries its private half', async () => {
    const token = await createEnrollmentToken(cp);
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const r = await cp.api(
      'POST',
      '/api/v1/agents/enroll',
      { token, hostname: 'x', agentVersion: 't', signingKey: await exportJWK(privateKey) },
      null,
    );
    expect(r.status).toBe(422);
    // The token was not spent by a refused request.
    const ok = await cp.api('POST', '/api/v1/agents/enroll', await enrolBody(token), null);
    expect(ok.status).toBe(201);
  });

  it('an agent enrolled through the CLI refuses to enrol twice without --force', async () => {
    const agent = await startAgent(cp);
    const token = await createEnrollmentToken(cp);
    const r = await agent.run(['enroll', '--server', cp.url, '--token', token]);
    expect(r.code).toBe(2);
    expect(r.lines.join('\n')).toMatch(/already enrolled/);
  });
});
