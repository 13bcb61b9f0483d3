import { existsSync, readdirSync } from 'node:fs';
import { type ControlPlane, cleanupAll, startAgent, waitFor } from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup, smallPgTarget } from './backup-support.js';
import { controlPlane, getAgent, getCommand } from './support.js';

/**
 * Deleting a backup, testing a storage profile and previewing a retention policy, from the
 * hostile side: a viewer, an operator asking for what must stay, and malformed input. Each
 * refusal is a problem+json 4xx and changes nothing.
 */

type Backup = { id: string; objectKey: string; deletedAt: string | null; deletedReason: string | null };

let cp: ControlPlane;
let agent: Awaited<ReturnType<typeof startAgent>>;
let targetId: string;
let storageId: string;
let storeDir: string;
let operator: string;
let viewer: string;

const backups = async () =>
  (await cp.api<{ items: Backup[] }>('GET', `/api/v1/backups?target=${targetId}`)).body.items;

beforeAll(async () => {
  cp = await controlPlane();
  agent = await startAgent(cp);
  await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
  storeDir = `${agent.stateDir}/backups`;
  const s = await cp.api<{ id: string }>('POST', '/api/v1/storage', {
    kind: 'local',
    name: 'disk',
    directory: storeDir,
  });
  storageId = s.body.id;
  targetId = await smallPgTarget(cp, agent.id, storageId, 'orders');
  for (let i = 0; i < 2; i++) expect((await runBackup(cp, targetId)).job.state).toBe('succeeded');
  const token = async (role: string) =>
    (await cp.api<{ token: string }>('POST', '/api/v1/tokens', { name: role, role })).body.token;
  operator = await token('operator');
  viewer = await token('viewer');
}, 180_000);
afterAll(cleanupAll);

describe('DELETE /backups/:id', () => {
  it('refuses a viewer, an unknown id, and the newest good backup, changing nothing', async () => {
    const before = await backups();
    const [newest, older] = before as [Backup, Backup];
    const asViewer = await cp.api<{ detail: string }>(
      'DELETE',
      `/api/v1/backups/${older.id}`,
      undefined,
      viewer,
    );
    expect(asViewer.status).toBe(403);
    expect(asViewer.body.detail).toContain('operator');
    for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid', '..%2F..%2Fetc'])
      expect((await cp.api('DELETE', `/api/v1/backups/${id}`, undefined, operator)).status).toBe(404);
    const protectedOne = await cp.api<{ status: number; type: string; detail: string }>(
      'DELETE',
      `/api/v1/backups/${newest.id}`,
      undefined,
      operator,
    );
    expect(protectedOne.status).toBe(409);
    expect(protectedOne.body.type).toMatch(/backup-protected$/);
    expect(protectedOne.body.detail).toContain('newest good backup');
    expect(await backups()).toEqual(before);
    expect(existsSync(`${storeDir}/${newest.objectKey}`)).toBe(true);
    const commands = (
      await cp.api<{ items: { kind: string }[] }>('GET', `/api/v1/agents/${agent.id}/commands`)
    ).body.items;
    expect(commands.filter((c) => c.kind === 'backup.delete')).toEqual([]);
  });

  it('deletes an older backup through its agent: objects gone, a tombstone with who asked; a second delete is a 409', async () => {
    const [newest, older] = (await backups()) as [Backup, Backup];
    const r = await cp.api<{ commandId: string }>(
      'DELETE',
      `/api/v1/backups/${older.id}`,
      undefined,
      operator,
    );
    expect(r.status).toBe(202);
    await waitFor(async () => (await getCommand(cp, r.body.commandId)).state === 'succeeded', {
      timeoutMs: 30_000,
      what: 'backup.delete to succeed',
    });
    await waitFor(
      async () => (await cp.api<Backup>('GET', `/api/v1/backups/${older.id}`)).body.deletedAt !== null,
      {
        timeoutMs: 15_000,
        what: 'the tombstone',
      },
    );
    expect((await cp.api<Backup>('GET', `/api/v1/backups/${older.id}`)).body.deletedReason).toBe(
      'deleted on request by operator',
    );
    expect(existsSync(`${storeDir}/${older.objectKey}`)).toBe(false);
    expect(existsSync(`${storeDir}/${older.objectKey}.meta.json`)).toBe(false);
    expect(existsSync(`${storeDir}/${newest.objectKey}`)).toBe(true);
    const again = await cp.api<{ type: string }>(
      'DELETE',
      `/api/v1/backups/${older.id}`,
      undefined,
      operator,
    );
    expect(again.status).toBe(409);
    expect(again.body.type).toMatch(/backup-deleted$/);
  }, 60_000);
});

describe('POST /storage/:id/test', () => {
  it('refuses a viewer, malformed bodies, unknown agents and profiles; tests from an online agent', async () => {
    const path = `/api/v1/storage/${storageId}/test`;
    expect((await cp.api('POST', path, { agentId: agent.id }, viewer)).status).toBe(403);
    for (const body of [
      {},
      { agentId: 'x' },
      { agentId: agent.id, storage: { kind: 'local', directory: '/' } },
    ])
      expect((await cp.api('POST', path, body, operator)).status, JSON.stringify(body)).toBe(422);
    const nobody = '00000000-0000-4000-8000-000000000000';
    expect((await cp.api('POST', path, { agentId: nobody }, operator)).status).toBe(404);
    expect(
      (await cp.api('POST', `/api/v1/storage/${nobody}/test`, { agentId: agent.id }, operator)).status,
    ).toBe(404);
    const ok = await cp.api<{ commandId: string }>('POST', path, { agentId: agent.id }, operator);
    expect(ok.status).toBe(202);
    const { value } = await waitFor(
      async () => {
        const c = await getCommand(cp, ok.body.commandId);
        return ['succeeded', 'failed'].includes(c.state) ? c : undefined;
      },
      { timeoutMs: 30_000, what: 'storage.test' },
    );
    expect(value.state).toBe('succeeded');
    expect(value.result).toMatchObject({ bytes: 65536 });
    // The probe is gone afterwards.
    const probes = `${storeDir}/.dbbackup-test`;
    expect(existsSync(probes) ? readdirSync(probes) : []).toEqual([]);
  }, 60_000);
});

describe('GET /targets/:id/retention/preview?…', () => {
  it('previews a policy given in the query without saving it; a bad rule is a 400 naming it', async () => {
    const p = await cp.api<{ policy: unknown; keep: unknown[]; delete: unknown[] }>(
      'GET',
      `/api/v1/targets/${targetId}/retention/preview?keepLast=1`,
      undefined,
      viewer,
    );
    expect(p.status).toBe(200);
    expect(p.body.policy).toEqual({ keepLast: 1 });
    expect(p.body.keep).toHaveLength(1);
    for (const q of ['keepLast=abc', 'keepLast=0', 'daily=-1', 'yearly=5000', 'keepLast=1e3']) {
      const r = await cp.api<{ detail: string }>('GET', `/api/v1/targets/${targetId}/retention/preview?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.detail, q).toContain(q.split('=')[0]);
    }
    expect(
      (await cp.api<{ policy: unknown }>('GET', `/api/v1/targets/${targetId}/retention`)).body.policy,
    ).toEqual({});
  });

  it('the database page aggregate: 404 for an unknown target, readable by a viewer', async () => {
    expect(
      (await cp.api('GET', '/api/v1/dashboard/targets/00000000-0000-4000-8000-000000000000')).status,
    ).toBe(404);
    const d = await cp.api<{ target: { name: string }; backups: { id: string }[] }>(
      'GET',
      `/api/v1/dashboard/targets/${targetId}`,
      undefined,
      viewer,
    );
    expect(d.status).toBe(200);
    expect(d.body.target.name).toBe('orders');
    expect(d.body.backups.map((b) => b.id)).toEqual((await backups()).map((b) => b.id));
  });
});
