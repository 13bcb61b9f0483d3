import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { backupFileId, backupObjectPath, type TargetSpec, targetDbName } from '@dbbackup/proto';
import {
  type Adversary,
  type ControlPlane,
  cleanupAll,
  enrolAdversary,
  query,
  type S3Server,
  startAgent,
  startS3,
  trackDir,
  waitFor,
} from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Backup, type Job, jobLogs, runBackup, s3Profile, waitJob } from './backup-support.js';
import { controlPlane, getAgent } from './support.js';

// The control plane checks everything an agent reports against its own records. Each
// test plays a compromised agent (a real enrolment driven by hand on the real socket)
// and shows the attempt is refused, recorded, and changes nothing.

let cp: ControlPlane;
let s3: S3Server;
let storageId: string;
let agentB: Awaited<ReturnType<typeof startAgent>>;
let targetB: string;
let backupB: Backup;
let metaB: Record<string, unknown>;
let a: Adversary;
let targetA: string;

const work = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-trust-')));

/** A backup's meta.json as it sits in the bucket: what any agent sharing the storage can read. */
function metaInBucket(objectKey: string): Record<string, unknown> {
  return JSON.parse(
    readFileSync(path.join(s3.directory, s3.bucket, `${objectKey}.meta.json._S3rver_object`), 'utf8'),
  ) as Record<string, unknown>;
}

/** What a refused report must leave as it was: both targets' catalogue, jobs and health, and other alerts. */
async function snapshot() {
  const of = async (t: string) => ({
    backups: (await cp.api<{ items: Backup[] }>('GET', `/api/v1/backups?target=${t}`)).body.items.map((b) => [
      b.id,
      b.sha256,
    ]),
    jobs: (await cp.api<{ items: Job[] }>('GET', `/api/v1/jobs?target=${t}`)).body.items.map((j) => [
      j.id,
      j.state,
    ]),
    // The health without its RPO in seconds, which moves with the clock.
    health: (({ rpoSeconds: _moves, ...h }) => h)(
      (await cp.api<Record<string, unknown>>('GET', `/api/v1/targets/${t}/health`)).body,
    ),
  });
  const alerts = (
    await cp.api<{ items: { kind: string; state: string; subject: string }[] }>('GET', '/api/v1/alerts')
  ).body.items
    .filter((x) => x.kind !== 'agent_event_rejected')
    .map((x) => [x.kind, x.state, x.subject]);
  return { a: await of(targetA), b: await of(targetB), alerts, all: await catalogueSize() };
}

async function catalogueSize() {
  const rows = await query<{ n: string }>(cp.databaseUrl, 'SELECT count(*) AS n FROM backups');
  return Number(rows[0]?.n);
}

type EventView = { seq: number; type: string; rejected?: string; body: unknown };
async function rejectedEvents(agentId: string): Promise<EventView[]> {
  return (await cp.api<{ items: EventView[] }>('GET', `/api/v1/agents/${agentId}/events`)).body.items.filter(
    (e) => e.rejected,
  );
}

/** The refusal is visible: the event is listed with its reason, an alert fires, the audit trail says denied. */
async function expectRefusal(seq: number, reason: RegExp) {
  const ev = (await rejectedEvents(a.agentId)).find((e) => e.seq === seq);
  expect(ev?.rejected, `event ${seq} recorded as rejected`).toMatch(reason);
  const alerts = (
    await cp.api<{ items: { kind: string; state: string; subject: string }[] }>(
      'GET',
      '/api/v1/alerts?kind=agent_event_rejected&state=firing',
    )
  ).body.items;
  expect(alerts.map((x) => x.subject)).toContain(`agent:${a.agentId}`);
  const audit = (
    await cp.api<{
      items: { action: string; outcome: string; actorId: string | null; detail: { seq?: number } }[];
    }>('GET', `/api/v1/audit?outcome=denied`)
  ).body.items;
  expect(audit.some((x) => x.actorId === a.agentId && x.detail.seq === seq)).toBe(true);
}

beforeAll(async () => {
  cp = await controlPlane();
  s3 = await startS3();
  storageId = await s3Profile(cp, s3, 'shared');
  agentB = await startAgent(cp);
  await waitFor(async () => (await getAgent(cp, agentB.id)).status === 'online', { what: 'B online' });
  const file = path.join(work, 'b.db');
  execFileSync('sqlite3', [file, "CREATE TABLE secrets (v text); INSERT INTO secrets VALUES ('b-only');"]);
  const t = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agentB.id}/targets`, {
    engine: 'sqlite',
    name: 'b-db',
    connection: { path: file },
    storageId,
  });
  expect(t.status, JSON.stringify(t.body)).toBe(201);
  targetB = t.body.id;
  const r = await runBackup(cp, targetB);
  expect(r.job.state, await jobLogs(cp, r.job.id)).toBe('succeeded');
  backupB = r.backup!;
  metaB = metaInBucket(backupB.objectKey);

  a = await enrolAdversary(cp, 'host-a');
  await a.connect();
  const ta = await cp.api<{ id: string }>('POST', `/api/v1/agents/${a.agentId}/targets`, {
    engine: 'sqlite',
    name: 'a-db',
    connection: { path: '/var/lib/a.db' },
    storageId,
  });
  expect(ta.status, JSON.stringify(ta.body)).toBe(201);
  targetA = ta.body.id;
}, 180_000);
afterAll(cleanupAll);

/** Ask for a backup of A's target and take the command as the adversary. */
async function backupCommandForA() {
  const r = await cp.api<Job>('POST', `/api/v1/targets/${targetA}/backups`);
  expect(r.status).toBe(202);
  const { commandId, command } = await a.command('backup');
  await a.event({ type: 'command.started', commandId });
  return {
    jobId: r.body.id,
    commandId,
    cmd: command as {
      backupId: string;
      target: TargetSpec;
      storage: { prefix: string };
      naming: { env: string; agentName: string };
    },
  };
}

/** B's metadata moved to where A's backup would be: A's ids and object key, B's data key. */
function forgedFromB(cmd: Awaited<ReturnType<typeof backupCommandForA>>['cmd']) {
  const at = new Date();
  const { relative, filename } = backupObjectPath({
    ...cmd.naming,
    dbType: 'sqlite',
    dbName: targetDbName(cmd.target),
    app: cmd.target.name,
    at,
    id: backupFileId(cmd.backupId),
    ext: 'sql.zst.enc',
  });
  const objectKey = `${cmd.storage.prefix}/${relative}`;
  return {
    meta: {
      ...metaB,
      backupId: cmd.backupId,
      targetId: targetA,
      agentId: a.agentId,
      objectKey,
      filename,
      startTime: at.toISOString(),
      endTime: at.toISOString(),
    },
    metaKey: `${objectKey}.meta.json`,
  };
}

describe('a compromised agent', () => {
  it('cannot report another agent’s backup as its own: the result is refused and changes nothing', async () => {
    const { jobId, commandId } = await backupCommandForA();
    const before = await snapshot();
    const seq = a.seq;
    await a.event({
      type: 'command.succeeded',
      commandId,
      result: { meta: metaB, metaKey: `${backupB.objectKey}.meta.json` },
    });
    expect(await snapshot()).toEqual(before);
    await expectRefusal(seq, /backup/);
    const job = (await cp.api<Job>('GET', `/api/v1/jobs/${jobId}`)).body;
    expect(job.state).toBe('running');
    // It may still say it failed (that is its to say), which frees the target.
    await a.event({ type: 'command.failed', commandId, error: { code: 'x', message: 'gave up' } });
    expect((await cp.api<Job>('GET', `/api/v1/jobs/${jobId}`)).body.state).toBe('failed');
  });

  it('cannot carry another backup’s data key under its own ids: the key binding refuses it', async () => {
    const { cmd, commandId } = await backupCommandForA();
    const before = await snapshot();
    const seq = a.seq;
    await a.event({ type: 'command.succeeded', commandId, result: forgedFromB(cmd) });
    expect(await snapshot()).toEqual(before);
    await expectRefusal(seq, new RegExp(`data key belongs to backup ${backupB.id}`));
    await a.event({ type: 'command.failed', commandId, error: { code: 'x', message: 'gave up' } });
  });

  it('cannot announce or finish a scheduled run of another agent’s target', async () => {
    const before = await snapshot();
    const jobId = randomUUID();
    const started = a.seq;
    await a.event({
      type: 'scheduled.started',
      jobId,
      backupId: randomUUID(),
      targetId: targetB,
      scheduleId: randomUUID(),
      storageId,
      disconnected: false,
      catchUp: false,
      startedAt: new Date(Date.now() + 3600_000).toISOString(),
    });
    const finished = a.seq;
    await a.event({
      type: 'scheduled.finished',
      jobId,
      ok: true,
      result: { meta: { ...metaB, startTime: new Date(Date.now() + 3600_000).toISOString() }, metaKey: 'x' },
      finishedAt: new Date().toISOString(),
    });
    expect(await snapshot()).toEqual(before);
    await expectRefusal(started, /not a target of this agent/);
    await expectRefusal(finished, /never announced/);
  });

  it('cannot finish a command of another agent', async () => {
    const ping = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agentB.id}/commands`, {
      command: { kind: 'ping' },
    });
    expect(ping.status).toBe(202);
    const seq = a.seq;
    await a.event({ type: 'command.succeeded', commandId: ping.body.id, result: { forged: true } });
    await expectRefusal(seq, /not a command of this agent/);
    const c = await waitFor(
      async () => {
        const v = (
          await cp.api<{ state: string; result: unknown }>('GET', `/api/v1/commands/${ping.body.id}`)
        ).body;
        return v.state === 'succeeded' ? v : undefined;
      },
      { what: 'B answers its own ping' },
    );
    expect(c.value.result).not.toEqual({ forged: true });
  });

  it('never gets a key re-wrapped that is not bound to the backup asked for (a catalogue entry with B’s key)', async () => {
    // Rows such as an older control plane could have catalogued: A's backup, B's wrapped key.
    for (const keyBound of [true, false]) {
      const id = randomUUID();
      await query(
        cp.databaseUrl,
        // meta_kid as the catalogue records it (migration 0011): else the key rotator would ask
        // the agent to rewrite this planted meta.json, a command this test does not count on.
        `INSERT INTO backups (id, target_id, agent_id, storage_id, object_key, meta_key, filename, size_bytes, sha256,
           status, started_at, finished_at, meta, key_bound, meta_kid)
         VALUES ($1, $2, $3, $4, $5, $5 || '.meta.json', 'f', 1, $6, 'completed', now(), now(), $7, $8, $7::jsonb->>'kekId')`,
        [
          id,
          targetA,
          a.agentId,
          storageId,
          `planted/${id}`,
          metaB.sha256,
          JSON.stringify({ ...metaB, backupId: id, targetId: targetA, agentId: a.agentId }),
          keyBound,
        ],
      );
      const commandsBefore = await query(cp.databaseUrl, 'SELECT id FROM commands WHERE agent_id = $1', [
        a.agentId,
      ]);
      const v = await cp.api<{ type: string; detail: string }>('POST', `/api/v1/backups/${id}/verify`);
      expect(v.status).toBe(409);
      expect(v.body.type).toMatch(/key-binding/);
      expect(v.body.detail).toMatch(new RegExp(`belongs to backup ${backupB.id}`));
      const commandsAfter = await query(cp.databaseUrl, 'SELECT id FROM commands WHERE agent_id = $1', [
        a.agentId,
      ]);
      expect(commandsAfter.length).toBe(commandsBefore.length);
      await query(cp.databaseUrl, 'DELETE FROM backups WHERE id = $1', [id]);
    }
  });
});

describe('an operator', () => {
  it.each([
    [
      'meta.rewrite',
      {
        kind: 'meta.rewrite',
        storage: { kind: 'local', id: 'x', directory: '/tmp' },
        metaKey: 'k',
        backupId: randomUUID(),
        sha256: 'a'.repeat(64),
        wrappedKey: 'x',
        kekId: 'k',
      },
    ],
    [
      'backup',
      {
        kind: 'backup',
        jobId: 'j',
        backupId: 'b',
        target: {},
        storage: {},
        kek: { kid: 'k', publicJwk: {} },
        naming: { env: 'e', agentName: 'n' },
      },
    ],
    ['config.sync', { kind: 'config.sync', version: 1 }],
  ])('cannot send a raw %s command (422, nothing queued)', async (_kind, command) => {
    const before = await query(cp.databaseUrl, 'SELECT id FROM commands WHERE agent_id = $1', [agentB.id]);
    const r = await cp.api<{ status: number }>('POST', `/api/v1/agents/${agentB.id}/commands`, { command });
    expect(r.status).toBe(422);
    const after = await query(cp.databaseUrl, 'SELECT id FROM commands WHERE agent_id = $1', [agentB.id]);
    expect(after.length).toBe(before.length);
  });
});

describe('a storage profile', () => {
  it('that a schedule uses cannot be deleted (409), and the agent keeps getting its configuration', async () => {
    const other = await cp.api<{ id: string }>('POST', '/api/v1/storage', {
      kind: 'local',
      name: 'scheduled-only',
      directory: path.join(work, 'other'),
    });
    expect(other.status).toBe(201);
    const sch = await cp.api<{ id: string }>('POST', `/api/v1/targets/${targetB}/schedules`, {
      cron: '0 3 * * *',
      timezone: 'UTC',
      storageId: other.body.id,
    });
    expect(sch.status, JSON.stringify(sch.body)).toBe(201);
    const del = await cp.api<{ detail: string }>('DELETE', `/api/v1/storage/${other.body.id}`);
    expect(del.status).toBe(409);
    expect(del.body.detail).toMatch(new RegExp(`schedule ${sch.body.id}`));
    expect((await cp.api('GET', `/api/v1/storage/${other.body.id}`)).status).toBe(200);
    // The configuration still builds and reaches the agent.
    const syncs = () =>
      query<{ state: string }>(
        cp.databaseUrl,
        "SELECT state FROM commands WHERE agent_id = $1 AND kind = 'config.sync' ORDER BY created_at DESC LIMIT 1",
        [agentB.id],
      );
    await waitFor(async () => (await syncs())[0]?.state === 'succeeded', { what: 'config delivered' }).catch(
      async (e) => {
        throw new Error(
          `${e.message}: ${JSON.stringify(await query(cp.databaseUrl, "SELECT kind, state, error, payload->>'version' AS v, created_at FROM commands WHERE agent_id = $1 ORDER BY created_at", [agentB.id]))}`,
        );
      },
    );
    expect((await cp.api('DELETE', `/api/v1/targets/${targetB}/schedules/${sch.body.id}`)).status).toBe(204);
    expect((await cp.api('DELETE', `/api/v1/storage/${other.body.id}`)).status).toBe(204);
  });
});

describe('a viewer', () => {
  it('sees no wrapped or re-wrapped key in commands, events, jobs or backups', async () => {
    const r = await cp.api<Job>('POST', `/api/v1/backups/${backupB.id}/verify`);
    expect(r.status).toBe(202);
    const j = await waitJob(cp, r.body.id);
    expect(j.state, await jobLogs(cp, j.id)).toBe('succeeded');
    const viewer = await cp.api<{ token: string }>('POST', '/api/v1/tokens', { name: 'v', role: 'viewer' });
    expect(viewer.status).toBe(201);
    const texts: string[] = [];
    for (const p of [
      `/api/v1/agents/${agentB.id}/commands`,
      `/api/v1/agents/${agentB.id}/events`,
      `/api/v1/agents/${a.agentId}/events`,
      `/api/v1/jobs/${j.id}`,
      `/api/v1/jobs?target=${targetB}`,
      `/api/v1/backups?target=${targetB}`,
      `/api/v1/backups/${backupB.id}`,
    ]) {
      const v = await cp.api('GET', p, undefined, viewer.body.token);
      expect(v.status, p).toBe(200);
      texts.push(JSON.stringify(v.body));
    }
    const all = texts.join('\n');
    // A compact JWE wrapped with ECDH-ES starts with the base64url of '{"alg":"ECDH-ES'.
    expect(all).not.toContain('eyJhbGciOiJFQ0RILUVT');
    expect(all).not.toContain(String(metaB.wrappedKey));
    expect(all).toContain('[redacted]');
  });
});

describe('the agent session', () => {
  it('stops at an event it could not apply: nothing after it is applied, and it is sent again', async () => {
    // A database failure on one event (every attempt), injected with a trigger.
    await query(
      cp.databaseUrl,
      `CREATE FUNCTION fail_boom() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF NEW.type = 'log' AND NEW.body->>'message' = 'boom' THEN
           RAISE EXCEPTION 'injected' USING ERRCODE = 'serialization_failure';
         END IF;
         RETURN NEW;
       END $$;
       CREATE TRIGGER fail_boom BEFORE INSERT ON agent_events FOR EACH ROW EXECUTE FUNCTION fail_boom();`,
    );
    const first = a.seq;
    await a.event({ type: 'log', level: 'info', message: 'boom' }, { wait: false });
    await a.event({ type: 'log', level: 'info', message: 'after' }, { wait: false });
    const closed = await a.closed();
    expect(closed.code).toBe(1011);
    const seqs = await query<{ seq: string }>(
      cp.databaseUrl,
      'SELECT seq FROM agent_events WHERE agent_id = $1 AND seq >= $2',
      [a.agentId, first],
    );
    expect(seqs).toEqual([]);
    const mark = await query<{ s: string }>(
      cp.databaseUrl,
      'SELECT last_event_seq AS s FROM agents WHERE id = $1',
      [a.agentId],
    );
    expect(Number(mark[0]?.s)).toBe(first - 1);

    await query(cp.databaseUrl, 'DROP TRIGGER fail_boom ON agent_events; DROP FUNCTION fail_boom();');
    a.seq = first;
    const welcome = await a.connect({ eventsAckedUpTo: first - 1 });
    expect(welcome.payload.eventsAckedUpTo).toBe(first - 1);
    await a.event({ type: 'log', level: 'info', message: 'boom' });
    expect(await a.event({ type: 'log', level: 'info', message: 'after' })).toBe(first + 1);
    const applied = await query<{ seq: string; rejected_reason: string | null }>(
      cp.databaseUrl,
      'SELECT seq, rejected_reason FROM agent_events WHERE agent_id = $1 AND seq >= $2 ORDER BY seq',
      [a.agentId, first],
    );
    expect(applied.map((r) => [Number(r.seq), r.rejected_reason])).toEqual([
      [first, null],
      [first + 1, null],
    ]);
  });

  it('a real agent whose success report fails to apply six times in a row loses nothing and duplicates nothing', async () => {
    await query(
      cp.databaseUrl,
      `CREATE SEQUENCE fail_six;
       CREATE FUNCTION fail_six() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF NEW.type = 'command.succeeded' AND NEW.agent_id = '${agentB.id}' AND nextval('fail_six') <= 6 THEN
           RAISE EXCEPTION 'injected' USING ERRCODE = 'serialization_failure';
         END IF;
         RETURN NEW;
       END $$;
       CREATE TRIGGER fail_six BEFORE INSERT ON agent_events FOR EACH ROW EXECUTE FUNCTION fail_six();`,
    );
    try {
      const { job, backup } = await runBackup(cp, targetB);
      expect(job.state, await jobLogs(cp, job.id)).toBe('succeeded');
      const failures = await query<{ n: string }>(cp.databaseUrl, 'SELECT last_value AS n FROM fail_six');
      expect(Number(failures[0]?.n)).toBeGreaterThanOrEqual(7);
      const rows = await query<{ id: string }>(cp.databaseUrl, 'SELECT id FROM backups WHERE id = $1', [
        backup!.id,
      ]);
      expect(rows).toHaveLength(1);
      const seqs = (
        await query<{ seq: string }>(
          cp.databaseUrl,
          'SELECT seq FROM agent_events WHERE agent_id = $1 ORDER BY seq',
          [agentB.id],
        )
      ).map((r) => Number(r.seq));
      expect(seqs).toEqual(seqs.map((_, i) => (seqs[0] ?? 1) + i));
      const succeeded = await query(
        cp.databaseUrl,
        "SELECT seq FROM agent_events WHERE agent_id = $1 AND type = 'command.succeeded' AND body->>'commandId' = (SELECT command_id::text FROM jobs WHERE id = $2)",
        [agentB.id, job.id],
      );
      expect(succeeded).toHaveLength(1);
    } finally {
      await query(
        cp.databaseUrl,
        'DROP TRIGGER fail_six ON agent_events; DROP FUNCTION fail_six(); DROP SEQUENCE fail_six;',
      );
    }
  });

  it('closes a session that skips a sequence number, applying nothing past the hole', async () => {
    const first = a.seq;
    await a.event({ type: 'log', level: 'info', message: 'one' });
    await a.event({ type: 'log', level: 'info', message: 'three' }, { seq: first + 2, wait: false });
    const closed = await a.closed();
    expect(closed.code).toBe(1008);
    expect(closed.reason).toMatch(/before event/);
    const mark = await query<{ s: string }>(
      cp.databaseUrl,
      'SELECT last_event_seq AS s FROM agents WHERE id = $1',
      [a.agentId],
    );
    expect(Number(mark[0]?.s)).toBe(first);
    a.seq = first + 1;
    await a.connect();
  });

  it('closes a flood of frames with a reason', async () => {
    for (let i = 0; i < 1500; i++) a.send('ping', { t: i });
    const closed = await a.closed();
    expect(closed.code).toBe(1008);
    expect(closed.reason).toMatch(/messages/);
    await a.connect();
    expect(await a.event({ type: 'log', level: 'info', message: 'still heard' })).toBeGreaterThan(0);
  });
});

describe('whoever can write to the bucket', () => {
  async function put(key: string, body: string) {
    const client = new S3Client({
      region: 'us-east-1',
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }));
    client.destroy();
  }

  it('cannot rescan a forged, altered or unsigned meta.json into the catalogue; a genuine one is rebuilt', async () => {
    const dir = path.posix.dirname(backupB.objectKey);
    const forgedId = randomUUID();
    const forgedKey = `${dir}/planted_${backupFileId(forgedId)}.sql.zst.enc`;
    // B's signed meta.json moved to a new id and key (the signature no longer matches).
    await put(
      `${forgedKey}.meta.json`,
      JSON.stringify({
        ...metaB,
        backupId: forgedId,
        objectKey: forgedKey,
        startTime: new Date(Date.now() + 3600_000).toISOString(),
      }),
    );
    // The same without a signature, and a file that is not JSON at all.
    const unsignedId = randomUUID();
    const unsignedKey = `${dir}/unsigned_${backupFileId(unsignedId)}.sql.zst.enc`;
    const { signature: _s, ...unsigned } = metaB;
    await put(
      `${unsignedKey}.meta.json`,
      JSON.stringify({ ...unsigned, backupId: unsignedId, objectKey: unsignedKey }),
    );
    await put(`${dir}/junk.meta.json`, '{ not json');

    await query(cp.databaseUrl, 'DELETE FROM backups WHERE id = $1', [backupB.id]);
    const r = await cp.api<{ found: number; added: number; skipped: { key: string; reason: string }[] }>(
      'POST',
      `/api/v1/storage/${storageId}/rescan`,
    );
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.added).toBe(1);
    const reasons = Object.fromEntries(r.body.skipped.map((x) => [path.posix.basename(x.key), x.reason]));
    expect(reasons[path.posix.basename(`${forgedKey}.meta.json`)]).toMatch(/signature is not agent/);
    expect(reasons[path.posix.basename(`${unsignedKey}.meta.json`)]).toMatch(/not signed/);
    expect(reasons['junk.meta.json']).toMatch(/not JSON/);
    expect((await cp.api('GET', `/api/v1/backups/${forgedId}`)).status).toBe(404);
    expect((await cp.api('GET', `/api/v1/backups/${unsignedId}`)).status).toBe(404);
    const again = await cp.api<Backup>('GET', `/api/v1/backups/${backupB.id}`);
    expect(again.status).toBe(200);
    expect(again.body.sha256).toBe(backupB.sha256);
  });
});
