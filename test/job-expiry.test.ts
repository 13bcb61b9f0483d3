import { type ControlPlane, cleanupAll, enrolAdversary, waitFor } from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from './backup-support.js';
import { controlPlane, getAgent } from './support.js';

// A backup asked for while its agent is away must not block its target for ever: when
// its command expires (or is cancelled by a revoke) the job fails with the reason, in
// the same transaction, and the target takes a new backup at once.

let cp: ControlPlane;
beforeAll(async () => {
  cp = await controlPlane({ env: { DBBACKUP_COMMAND_TTL_SECONDS: '2' } });
});
afterAll(cleanupAll);

async function awayAgentWithTarget(name: string) {
  const a = await enrolAdversary(cp, name);
  await a.connect();
  const s = await cp.api<{ id: string }>('POST', '/api/v1/storage', {
    kind: 'local',
    name,
    directory: '/tmp/none',
  });
  const t = await cp.api<{ id: string }>('POST', `/api/v1/agents/${a.agentId}/targets`, {
    engine: 'sqlite',
    name,
    connection: { path: '/var/lib/x.db' },
    storageId: s.body.id,
  });
  expect(t.status, JSON.stringify(t.body)).toBe(201);
  a.close();
  await waitFor(async () => (await getAgent(cp, a.agentId)).status === 'offline', { what: 'offline' });
  return { a, targetId: t.body.id };
}

const job = async (id: string) => (await cp.api<Job>('GET', `/api/v1/jobs/${id}`)).body;

describe('a backup asked for while the agent is away', () => {
  it('fails with the reason when its command expires, and the target takes a new backup at once', async () => {
    const { targetId } = await awayAgentWithTarget('expiring');
    const first = await cp.api<Job>('POST', `/api/v1/targets/${targetId}/backups`);
    expect(first.status).toBe(202);
    expect((await cp.api('POST', `/api/v1/targets/${targetId}/backups`)).status).toBe(409);
    const { value } = await waitFor(
      async () => ((await job(first.body.id)).state === 'failed' ? job(first.body.id) : undefined),
      {
        what: 'job failed on expiry',
        timeoutMs: 15_000,
      },
    );
    expect(value.error).toMatchObject({ code: 'expired' });
    expect((await cp.api('POST', `/api/v1/targets/${targetId}/backups`)).status).toBe(202);
  });

  it('fails with the reason when its agent is revoked', async () => {
    const { a, targetId } = await awayAgentWithTarget('revoked');
    const first = await cp.api<Job>('POST', `/api/v1/targets/${targetId}/backups`);
    expect(first.status).toBe(202);
    expect((await cp.api('DELETE', `/api/v1/agents/${a.agentId}`)).status).toBe(204);
    const j = await job(first.body.id);
    expect(j.state).toBe('failed');
    expect(j.error).toMatchObject({ code: 'cancelled' });
  });
});
