import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type ControlPlane,
  cleanupAll,
  startAgent,
  startControlPlane,
  trackDir,
  waitFor,
} from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from './backup-support.js';
import { freshDatabase } from './support.js';

/**
 * A job's live stream (GET /jobs/:id/events, Server-Sent Events), read through the replica
 * the job's agent is not connected to, resumed after a drop by Last-Event-ID, and refused
 * without a token.
 */

let cp1: ControlPlane;
let cp2: ControlPlane;
let jobId: string;
let apiLines: { id: number; message: string }[];

type Sse = { event: string; id?: string; data: string };

async function readSse(cp: ControlPlane, p: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${cp.url}${p}`, {
    headers: { authorization: `Bearer ${cp.adminToken}`, ...headers },
    signal: AbortSignal.timeout(60_000),
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
  const text = await res.text();
  return text
    .split('\n\n')
    .filter((b) => b.trim())
    .map((b) => {
      const e: Sse = { event: 'message', data: '' };
      for (const line of b.split('\n')) {
        if (line.startsWith('event:')) e.event = line.slice(6).trim();
        else if (line.startsWith('id:')) e.id = line.slice(3).trim();
        else if (line.startsWith('data:')) e.data += line.slice(5).trim();
      }
      return e;
    });
}

beforeAll(async () => {
  const databaseUrl = await freshDatabase();
  const env = { DBBACKUP_MASTER_KEY: randomBytes(32).toString('base64') };
  cp1 = await startControlPlane({ databaseUrl, env });
  cp2 = await startControlPlane({ databaseUrl, env, adminToken: cp1.adminToken });
  // The agent is connected to the first replica only.
  const agent = await startAgent(cp1);
  const work = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-sse-')));
  const file = path.join(work, 'app.db');
  execFileSync('sqlite3', [file, 'CREATE TABLE t(v); INSERT INTO t VALUES (1),(2),(3);']);
  const s = await cp1.api<{ id: string }>('POST', '/api/v1/storage', {
    kind: 'local',
    name: 'local',
    directory: path.join(work, 'store'),
  });
  await waitFor(
    async () =>
      (await cp1.api<{ status: string }>('GET', `/api/v1/agents/${agent.id}`)).body.status === 'online',
    {
      what: 'agent online',
    },
  );
  const t = await cp1.api<{ id: string }>('POST', `/api/v1/agents/${agent.id}/targets`, {
    engine: 'sqlite',
    name: 'app',
    connection: { path: file },
    storageId: s.body.id,
  });
  expect(t.status, JSON.stringify(t.body)).toBe(201);
  const { job } = await runBackup(cp1, t.body.id);
  expect(job.state).toBe('succeeded');
  jobId = job.id;
  apiLines = (
    await cp1.api<{ items: { id: number; message: string }[] }>('GET', `/api/v1/jobs/${jobId}/logs`)
  ).body.items;
  expect(apiLines.length).toBeGreaterThan(2);
}, 180_000);

afterAll(async () => {
  await cleanupAll();
});

describe('a job as Server-Sent Events', () => {
  it('through the other replica: the job, every log line in order with its id, then the end', async () => {
    const events = await readSse(cp2, `/api/v1/jobs/${jobId}/events`);
    expect(events[0]?.event).toBe('job');
    expect(JSON.parse(events[0]!.data).state).toBe('succeeded');
    const logs = events.filter((e) => e.event === 'log');
    expect(logs.map((e) => Number(e.id))).toEqual(apiLines.map((l) => l.id));
    expect(logs.map((e) => JSON.parse(e.data).message)).toEqual(apiLines.map((l) => l.message));
    expect(events.at(-1)?.event).toBe('end');
  });

  it('resumes after the last event id it had: nothing lost, nothing repeated', async () => {
    const from = apiLines[1]!.id;
    const events = await readSse(cp2, `/api/v1/jobs/${jobId}/events`, { 'last-event-id': String(from) });
    const logs = events.filter((e) => e.event === 'log').map((e) => Number(e.id));
    expect(logs).toEqual(apiLines.slice(2).map((l) => l.id));
  });

  it('is refused without a token, and for a job that does not exist, with problem+json', async () => {
    const anon = await fetch(`${cp2.url}/api/v1/jobs/${jobId}/events`);
    expect(anon.status).toBe(401);
    expect(anon.headers.get('content-type')).toMatch(/problem\+json/);
    const none = await fetch(`${cp2.url}/api/v1/jobs/00000000-0000-4000-8000-000000000000/events`, {
      headers: { authorization: `Bearer ${cp2.adminToken}` },
    });
    expect(none.status).toBe(404);
    const bad = await fetch(`${cp2.url}/api/v1/jobs/not-a-job/events`, {
      headers: { authorization: `Bearer ${cp2.adminToken}` },
    });
    expect(bad.status).toBeGreaterThanOrEqual(400);
    expect(bad.status).toBeLessThan(500);
  });
});
