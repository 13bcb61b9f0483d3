import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type ControlPlane, cleanupAll, query, startAgent, trackDir, waitFor } from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlane, getAgent } from './support.js';

// What the API says is what the agent does: a PATCH changes only what it names, and a
// deleted target stops being backed up on the agent's own clock within one sync.

let cp: ControlPlane;
let agent: Awaited<ReturnType<typeof startAgent>>;
let storageId: string;
const work = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-tchg-')));

beforeAll(async () => {
  cp = await controlPlane();
  agent = await startAgent(cp);
  await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
  const s = await cp.api<{ id: string }>('POST', '/api/v1/storage', {
    kind: 'local',
    name: 'tchg',
    directory: path.join(work, 'store'),
  });
  storageId = s.body.id;
}, 120_000);
afterAll(cleanupAll);

type TargetView = { id: string; name: string; secretRef: unknown; options: Record<string, unknown> };

async function sqliteTarget(name: string, extra: Record<string, unknown> = {}) {
  const file = path.join(work, `${name}.db`);
  execFileSync('sqlite3', [file, 'CREATE TABLE t(v); INSERT INTO t VALUES (1);']);
  const t = await cp.api<TargetView>('POST', `/api/v1/agents/${agent.id}/targets`, {
    engine: 'sqlite',
    name,
    connection: { path: file },
    storageId,
    ...extra,
  });
  expect(t.status, JSON.stringify(t.body)).toBe(201);
  return t.body;
}

describe('PATCH /targets/:id', () => {
  it('changes only what it names: options, retention and the secret reference stay', async () => {
    const options = { compression: 'gzip', compressionLevel: 3, retention: { keepLast: 4 } };
    const t = await sqliteTarget('patched', { options });
    const r = await cp.api<TargetView>('PATCH', `/api/v1/targets/${t.id}`, { name: 'renamed' });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.name).toBe('renamed');
    expect(r.body.options).toEqual(options);
    expect(r.body.secretRef).toEqual(t.secretRef);
    // Options merge key by key; null removes one.
    const m = await cp.api<TargetView>('PATCH', `/api/v1/targets/${t.id}`, {
      options: { compressionLevel: null, retention: { keepLast: 2 } },
    });
    expect(m.status, JSON.stringify(m.body)).toBe(200);
    expect(m.body.options).toEqual({ compression: 'gzip', retention: { keepLast: 2 } });
    // A bad merged result is 422 and changes nothing.
    const bad = await cp.api('PATCH', `/api/v1/targets/${t.id}`, { options: { compression: 'lz4' } });
    expect(bad.status).toBe(422);
    expect((await cp.api<TargetView>('GET', `/api/v1/targets/${t.id}`)).body.options).toEqual(m.body.options);
  });
});

describe('DELETE /targets/:id', () => {
  it('stops the agent backing the target up on its own clock within one sync', async () => {
    const t = await sqliteTarget('doomed');
    const s = await cp.api('POST', `/api/v1/targets/${t.id}/schedules`, {
      cron: '*/2 * * * * *',
      timezone: 'UTC',
    });
    expect(s.status).toBe(201);
    const started = () =>
      query<{ at: Date }>(
        cp.databaseUrl,
        "SELECT received_at AS at FROM agent_events WHERE agent_id = $1 AND type = 'scheduled.started' AND body->>'targetId' = $2",
        [agent.id, t.id],
      );
    await waitFor(async () => (await started()).length >= 1, { what: 'a scheduled run', timeoutMs: 20_000 });
    // Deleting waits for no job of the target to be running (409 while one is).
    await waitFor(async () => (await cp.api('DELETE', `/api/v1/targets/${t.id}`)).status === 204, {
      what: 'target deleted',
      intervalMs: 100,
    });
    const version = Number(
      (
        await query<{ v: number }>(cp.databaseUrl, 'SELECT config_version AS v FROM agents WHERE id = $1', [
          agent.id,
        ])
      )[0]?.v,
    );
    const { value: syncedAt } = await waitFor(
      async () =>
        (
          await query<{ at: Date }>(
            cp.databaseUrl,
            "SELECT finished_at AS at FROM commands WHERE agent_id = $1 AND kind = 'config.sync' AND state = 'succeeded' AND (payload->>'version')::int >= $2",
            [agent.id, version],
          )
        )[0]?.at,
      { what: 'the agent acknowledged the new configuration' },
    );
    await new Promise((r) => setTimeout(r, 5000));
    const after = (await started()).filter((e) => new Date(e.at) > new Date(syncedAt));
    expect(after).toEqual([]);
  });
});
