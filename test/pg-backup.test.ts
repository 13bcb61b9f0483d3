import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type ControlPlane,
  cleanupAll,
  openFirstSegment,
  query,
  reseal,
  type S3Server,
  startAgent,
  startS3,
  trackDir,
  waitFor,
} from '@dbbackup/testkit';
import { compactDecrypt, importJWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Backup,
  createDb,
  fingerprint,
  type Job,
  jobLogs,
  pgPort,
  pgTool,
  runBackup,
  seedDatabase,
  waitJob,
} from './backup-support.js';
import { controlPlane, getAgent } from './support.js';

const PLANTED_DB_PASSWORD = 'Planted-DB-Passw0rd-71c2';
const PLANTED_S3_SECRET = 'Planted-S3-Secret-9d44e1';

let cp: ControlPlane;
let s3: S3Server;
let agent: Awaited<ReturnType<typeof startAgent>>;
let source: string;
let before: Awaited<ReturnType<typeof fingerprint>>;
let s3Storage: string;
let localStorage: string;
let localDir: string;

async function target(
  name: string,
  storageId: string,
  database: string,
  extra: Record<string, unknown> = {},
) {
  const r = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agent.id}/targets`, {
    engine: 'postgresql',
    name,
    connection: { host: '127.0.0.1', port: pgPort(), database, user: 'postgres' },
    // Trust auth ignores it, but the agent sends it: a planted secret, declared on its host.
    secretRef: { kind: 'secret', name: 'source-db' },
    storageId,
    ...extra,
  });
  if (r.status !== 201) throw new Error(`target: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.id;
}

async function restore(backupId: string, body: Record<string, unknown>) {
  const r = await cp.api<Job>('POST', `/api/v1/backups/${backupId}/restore`, body);
  expect(r.status).toBe(202);
  return waitJob(cp, r.body.id);
}

beforeAll(async () => {
  cp = await controlPlane();
  s3 = await startS3();
  agent = await startAgent(cp, {
    env: {
      DBBACKUP_SECRET_SOURCE_DB: PLANTED_DB_PASSWORD,
      DBBACKUP_SECRET_SOURCE_DB_ALLOW: `127.0.0.1:${pgPort()}`,
    },
    labels: { env: 'test' },
  });
  await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
  source = await createDb();
  await seedDatabase(source, 5);
  before = await fingerprint(source);
  const s = await cp.api<{ id: string }>('POST', '/api/v1/storage', {
    kind: 's3',
    name: 's3rver',
    endpoint: s3.endpoint,
    bucket: s3.bucket,
    prefix: 'backups',
    forcePathStyle: true,
    partSizeBytes: 5 * 1024 * 1024,
    // s3rver knows one access key id and (with mismatched signatures allowed) takes any secret.
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: PLANTED_S3_SECRET },
  });
  expect(s.status).toBe(201);
  s3Storage = s.body.id;
  localDir = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-local-')));
  const l = await cp.api<{ id: string }>('POST', '/api/v1/storage', {
    kind: 'local',
    name: 'disk',
    directory: localDir,
  });
  localStorage = l.body.id;
}, 240_000);
afterAll(cleanupAll);

/** A backup of the source database into s3rver, of the test's own: no test depends on another's backup. */
async function ownBackup(name: string): Promise<Backup> {
  const t = await target(name, s3Storage, source);
  const { job, backup } = await runBackup(cp, t);
  expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
  return backup!;
}

describe('PostgreSQL backup and restore', () => {
  it('backs up through the REST API into s3rver under the documented key, meta.json beside it', async () => {
    const t = await target('shop', s3Storage, source);
    const { job, backup } = await runBackup(cp, t);
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    const s3Backup = backup!;
    const hostname = (await getAgent(cp, agent.id)).facts?.hostname as string;
    const re = new RegExp(
      `^backups/test/${hostname}/postgresql/${source}/\\d{4}/\\d{2}/shop_postgresql_${source}_\\d{8}T\\d{6}Z_[0-9a-f]{12}\\.pgdump\\.zst\\.enc$`,
    );
    expect(s3Backup.objectKey).toMatch(re);
    const objectFile = path.join(s3.directory, s3.bucket, `${s3Backup.objectKey}._S3rver_object`);
    const metaFile = path.join(s3.directory, s3.bucket, `${s3Backup.objectKey}.meta.json._S3rver_object`);
    expect(existsSync(objectFile)).toBe(true);
    const meta = JSON.parse(readFileSync(metaFile, 'utf8'));
    const stored = readFileSync(objectFile);
    expect(meta.sha256).toBe(createHash('sha256').update(stored).digest('hex'));
    expect(meta.sizeBytes).toBe(stored.length);
    for (const k of [
      'filename',
      'version',
      'dbType',
      'dbHost',
      'dbPort',
      'dbName',
      'startTime',
      'endTime',
      'durationMs',
      'sizeBytes',
      'sha256',
      'compressAlgo',
      'encryptAlgo',
      'chunks',
      'status',
      'wrappedKey',
      'engineVersion',
      'toolVersion',
      'agentId',
      'tables',
    ]) {
      expect(meta, k).toHaveProperty(k);
    }
    expect(meta.wrappedKey.split('.')).toHaveLength(5);
    expect(meta.tables.find((t: { table: string }) => t.table === 'public.pgbench_accounts')).toEqual({
      table: 'public.pgbench_accounts',
      rows: 500000,
      exact: true,
    });
    expect(s3.pendingUploads()).toEqual([]);
    const progress = (await cp.api<Job>('GET', `/api/v1/jobs/${job.id}`)).body.progress;
    expect(progress.bytesDumped).toBeGreaterThan(stored.length);
    expect(await jobLogs(cp, job.id)).toMatch(/backup committed/);
  });

  it('restores into a new database: schema, row counts, bytea, large object and pgbench_accounts identical', async () => {
    const s3Backup = await ownBackup('restore-all');
    const job = await restore(s3Backup.id, { database: `${source}_r1`, conflict: 'create' });
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    const after = await fingerprint(`${source}_r1`);
    expect(after).toEqual(before);
  });

  it('restores only the named tables when asked, and checks their row counts', async () => {
    const s3Backup = await ownBackup('restore-some');
    // pg_restore picks tables from one schema at a time; a mixed selection is refused, clearly.
    const mixed = await restore(s3Backup.id, {
      database: `${source}_mixed`,
      conflict: 'create',
      tables: ['pgbench_branches', 'extra.blobs'],
    });
    expect(mixed.state).toBe('failed');
    expect(mixed.error?.message).toMatch(/one schema at a time/);
    const db = `${source}_sel`;
    const job = await restore(s3Backup.id, {
      database: db,
      conflict: 'create',
      tables: ['pgbench_branches', 'pgbench_tellers'],
    });
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    const { dbUrl } = await import('./backup-support.js');
    const tables = await query<{ t: string }>(
      dbUrl(db),
      "SELECT schemaname || '.' || tablename AS t FROM pg_tables WHERE schemaname NOT IN ('pg_catalog','information_schema') ORDER BY 1",
    );
    expect(tables.map((t) => t.t)).toEqual(['public.pgbench_branches', 'public.pgbench_tellers']);
    expect(job.result).toMatchObject({ tablesChecked: expect.any(Number) });
    const n = await query<{ n: string }>(dbUrl(db), 'SELECT count(*) AS n FROM pgbench_branches');
    expect(Number(n[0]?.n)).toBe(before.counts['public.pgbench_branches']);
    // A schema-qualified selection: the schema is made first.
    const db2 = `${source}_sel2`;
    const job2 = await restore(s3Backup.id, { database: db2, conflict: 'create', tables: ['extra.blobs'] });
    expect(job2.state, JSON.stringify(job2.error)).toBe('succeeded');
    const blobs = await query<{ n: string }>(dbUrl(db2), 'SELECT count(*) AS n FROM extra.blobs');
    expect(Number(blobs[0]?.n)).toBe(2000);
  });

  it('refuses to restore into a non-empty database under the default policy, changing nothing', async () => {
    const s3Backup = await ownBackup('restore-refused');
    const job = await restore(s3Backup.id, { database: source });
    expect(job.state).toBe('failed');
    expect(job.error?.message).toMatch(/is not empty/);
    expect(await fingerprint(source)).toEqual(before);
  });

  it('rebuilds a lost catalogue from the bucket’s meta.json files alone', async () => {
    const s3Backup = await ownBackup('rescanned');
    await query(cp.databaseUrl, 'DELETE FROM backups WHERE id = $1', [s3Backup.id]);
    expect((await cp.api('GET', `/api/v1/backups/${s3Backup.id}`)).status).toBe(404);
    const r = await cp.api<{ found: number; added: number }>('POST', `/api/v1/storage/${s3Storage}/rescan`);
    expect(r.status).toBe(200);
    expect(r.body.added).toBe(1);
    const again = await cp.api<Backup>('GET', `/api/v1/backups/${s3Backup.id}`);
    expect(again.status).toBe(200);
    expect(again.body.sha256).toBe(s3Backup.sha256);
    expect(again.body.objectKey).toBe(s3Backup.objectKey);
    // A second rescan adds nothing.
    expect((await cp.api<{ added: number }>('POST', `/api/v1/storage/${s3Storage}/rescan`)).body.added).toBe(
      0,
    );
  });

  it('verifies a good backup', async () => {
    const s3Backup = await ownBackup('verified');
    const r = await cp.api<Job>('POST', `/api/v1/backups/${s3Backup.id}/verify`);
    const job = await waitJob(cp, r.body.id);
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    expect(job.result).toMatchObject({ sha256: s3Backup.sha256 });
  });

  it.each(['zstd', 'gzip', 'none'] as const)(
    'round-trips through local disk with %s',
    async (compression) => {
      const t = await target(`local-${compression}`, localStorage, source, { options: { compression } });
      const { job, backup } = await runBackup(cp, t);
      expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
      expect(backup!.meta.compressAlgo).toBe(compression);
      const file = path.join(localDir, backup!.objectKey);
      expect(existsSync(file)).toBe(true);
      expect(existsSync(`${file}.meta.json`)).toBe(true);
      expect(createHash('sha256').update(readFileSync(file)).digest('hex')).toBe(backup!.sha256);
      const db = `${source}_${compression}`;
      const r = await restore(backup!.id, { database: db, conflict: 'create' });
      expect(r.state, JSON.stringify(r.error)).toBe('succeeded');
      expect(await fingerprint(db)).toEqual(before);
    },
  );

  it('answers quick commands while a backup runs (two lanes)', async () => {
    const t = await target('lanes', s3Storage, source, { options: { compression: 'none' } });
    const b = await cp.api<Job>('POST', `/api/v1/targets/${t}/backups`);
    await waitFor(
      async () => (await cp.api<Job>('GET', `/api/v1/jobs/${b.body.id}`)).body.state === 'running',
      { what: 'backup running' },
    );
    const ping = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agent.id}/commands`, {
      command: { kind: 'ping' },
    });
    const { value: pong } = await waitFor(
      async () => {
        const c = (
          await cp.api<{ state: string; finishedAt: string }>('GET', `/api/v1/commands/${ping.body.id}`)
        ).body;
        return c.state === 'succeeded' ? c : undefined;
      },
      { what: 'ping answered' },
    );
    const job = await waitJob(cp, b.body.id);
    expect(job.state).toBe('succeeded');
    const backupDone = new Date(
      (await cp.api<{ finishedAt: string }>('GET', `/api/v1/jobs/${b.body.id}`)).body.finishedAt,
    );
    expect(new Date(pong.finishedAt).getTime()).toBeLessThan(backupDone.getTime());
  });

  it('refuses a second backup of the same target while one is queued or running', async () => {
    const t = await target('busy', localStorage, source);
    const first = await cp.api<Job>('POST', `/api/v1/targets/${t}/backups`);
    const second = await cp.api<{ type: string; jobId: string }>('POST', `/api/v1/targets/${t}/backups`);
    expect(second.status).toBe(409);
    expect(second.body.jobId).toBe(first.body.id);
    await waitJob(cp, first.body.id);
  });

  describe('a damaged backup', () => {
    let good: Backup;
    let original: Buffer;
    let file: string;
    const sentinel = async (db: string) =>
      (
        await query<{ v: string }>(
          `${(await import('./backup-support.js')).dbUrl(db)}`,
          'SELECT v FROM sentinel',
        )
      )[0]?.v;
    /** A new database holding one table, whose row a refused restore must leave alone. */
    const sentinelDb = async () => {
      const db = await createDb();
      await query(
        (await import('./backup-support.js')).dbUrl(db),
        "CREATE TABLE sentinel (v text); INSERT INTO sentinel VALUES ('untouched')",
      );
      return db;
    };

    beforeAll(async () => {
      const t = await target('damaged', localStorage, source, { options: { compression: 'none' } });
      good = (await runBackup(cp, t)).backup!;
      file = path.join(localDir, good.objectKey);
      original = readFileSync(file);
    });

    const damage: [string, (b: Buffer) => Buffer, RegExp][] = [
      [
        'one flipped byte',
        (b) => {
          const c = Buffer.from(b);
          c[Math.floor(c.length / 2)]! ^= 0x01;
          return c;
        },
        /checksum|SHA-256|authentication/,
      ],
      ['a truncated object', (b) => b.subarray(0, b.length - 1024 * 1024 - 16 - 100), /bytes|truncated/],
      [
        'two swapped segments',
        (b) => {
          const seg = 1024 * 1024 + 16;
          const a = 32 + seg;
          return Buffer.concat([
            b.subarray(0, a),
            b.subarray(a + seg, a + 2 * seg),
            b.subarray(a, a + seg),
            b.subarray(a + 2 * seg),
          ]);
        },
        /checksum|SHA-256|authentication|out of order/,
      ],
    ];

    it.each(damage)(
      '%s: verify fails naming the problem; restore refuses and the target database is untouched',
      async (_n, mutate, reason) => {
        writeFileSync(file, mutate(original));
        try {
          const v = await cp.api<Job>('POST', `/api/v1/backups/${good.id}/verify`);
          const vj = await waitJob(cp, v.body.id);
          expect(vj.state).toBe('failed');
          expect(vj.error?.message).toMatch(reason);

          const db = await sentinelDb();
          const rj = await restore(good.id, { database: db, conflict: 'clean' });
          expect(rj.state).toBe('failed');
          expect(rj.error?.message).toMatch(reason);
          expect(await sentinel(db)).toBe('untouched');
          const tables = await query<{ n: string }>(
            (await import('./backup-support.js')).dbUrl(db),
            "SELECT count(*) AS n FROM pg_tables WHERE schemaname NOT IN ('pg_catalog','information_schema')",
          );
          expect(Number(tables[0]?.n)).toBe(1);
        } finally {
          writeFileSync(file, original);
        }
      },
    );

    it('sealed under the all-zero key (agents before 0.1.1): verify and restore say so; the target is untouched', async () => {
      const exported = await cp.api<{ privateJwk: Record<string, string> }>(
        'POST',
        '/api/v1/keys/kek/export',
      );
      expect(exported.status).toBe(200);
      const meta = JSON.parse(readFileSync(`${file}.meta.json`, 'utf8'));
      const { plaintext } = await compactDecrypt(
        meta.wrappedKey,
        await importJWK(exported.body.privateJwk, 'ECDH-ES+A256KW'),
      );
      const legacy = reseal(original, Buffer.from(plaintext), Buffer.alloc(32));
      expect(legacy.length).toBe(original.length);
      writeFileSync(file, legacy);
      try {
        const vj = await waitJob(
          cp,
          (await cp.api<Job>('POST', `/api/v1/backups/${good.id}/verify`)).body.id,
        );
        expect(vj.state).toBe('failed');
        expect(vj.error?.message).toMatch(/before 0\.1\.1.*all-zero key.*--legacy-zero-key/);
        const db = await sentinelDb();
        const rj = await restore(good.id, { database: db, conflict: 'clean' });
        expect(rj.state).toBe('failed');
        expect(rj.error?.message).toMatch(/before 0\.1\.1.*all-zero key/);
        expect(await sentinel(db)).toBe('untouched');
      } finally {
        writeFileSync(file, original);
      }
    });
  });

  it('a failing pg_dump fails the job with pg_dump’s own message and stores nothing', async () => {
    const db = await createDb();
    await query(
      (await import('./backup-support.js')).dbUrl(db),
      `
      DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'limited') THEN CREATE ROLE limited LOGIN; END IF; END $$;
      CREATE TABLE secret_stuff (x int); INSERT INTO secret_stuff VALUES (1);
      REVOKE ALL ON secret_stuff FROM PUBLIC;`,
    );
    const r = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agent.id}/targets`, {
      engine: 'postgresql',
      name: 'no-permission',
      connection: { host: '127.0.0.1', port: pgPort(), database: db, user: 'limited' },
      storageId: s3Storage,
    });
    expect(r.status).toBe(201);
    const { job } = await runBackup(cp, r.body.id);
    expect(job.state).toBe('failed');
    expect(job.error?.message).toMatch(/pg_dump.*permission denied for table secret_stuff/s);
    expect(await jobLogs(cp, job.id)).toMatch(/permission denied/);
    const backups = await cp.api<{ items: unknown[] }>('GET', `/api/v1/backups?target=${r.body.id}`);
    expect(backups.body.items).toEqual([]);
    expect(s3.pendingUploads()).toEqual([]);
    const { readdirSync } = await import('node:fs');
    const all = readdirSync(path.join(s3.directory, s3.bucket), { recursive: true }).map(String);
    expect(all.filter((f) => f.includes(db))).toEqual([]);
  });

  it('a target whose database does not exist is refused with the agent’s error, and not saved', async () => {
    const r = await cp.api<{ status: number; detail: string }>('POST', `/api/v1/agents/${agent.id}/targets`, {
      engine: 'postgresql',
      name: 'nowhere',
      connection: { host: '127.0.0.1', port: pgPort(), database: 'does_not_exist', user: 'postgres' },
      storageId: s3Storage,
    });
    expect(r.status).toBe(422);
    expect(r.body.detail).toMatch(/does_not_exist/);
    const list = await cp.api<{ items: { name: string }[] }>('GET', `/api/v1/agents/${agent.id}/targets`);
    expect(list.body.items.map((t) => t.name)).not.toContain('nowhere');
  });

  it('keeps only JWE-wrapped keys and no planted secret in the control plane’s tables or either process’s logs', async () => {
    const s3Backup = await ownBackup('secrets');
    const dump = pgTool('pg_dump', [
      '--data-only',
      '-h',
      '127.0.0.1',
      '-p',
      String(new URL(cp.databaseUrl).port),
      '-U',
      'postgres',
      new URL(cp.databaseUrl).pathname.slice(1),
    ]);
    expect(dump).not.toContain(PLANTED_S3_SECRET);
    expect(dump).not.toContain(PLANTED_DB_PASSWORD);
    const metas = await query<{ meta: { wrappedKey: string } }>(cp.databaseUrl, 'SELECT meta FROM backups');
    expect(metas.length).toBeGreaterThan(0);
    for (const m of metas) expect(m.meta.wrappedKey).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+\.[\w-]+\.[\w-]+$/);
    const sealed = await query<{ secret_enc: string }>(
      cp.databaseUrl,
      "SELECT secret_enc FROM storage_profiles WHERE kind = 's3'",
    );
    expect(sealed[0]?.secret_enc).toMatch(/^v1:/);
    const api = await cp.api('GET', `/api/v1/storage/${s3Storage}`);
    expect(JSON.stringify(api.body)).not.toContain(PLANTED_S3_SECRET);
    const backup = await cp.api('GET', `/api/v1/backups/${s3Backup.id}`);
    expect(JSON.stringify(backup.body)).not.toContain('wrappedKey');
    for (const line of [...cp.proc.lines, ...agent.proc.lines]) {
      expect(line).not.toContain(PLANTED_S3_SECRET);
      expect(line).not.toContain(PLANTED_DB_PASSWORD);
    }
  });

  it('kill -9 of the agent mid-upload: after restart the job is failed (interrupted), no meta.json, no pending multipart upload', async () => {
    const t = await target('killed', s3Storage, source, { options: { compression: 'none' } });
    const r = await cp.api<Job>('POST', `/api/v1/targets/${t}/backups`);
    await waitFor(async () => s3.pendingUploads().length > 0 || undefined, {
      timeoutMs: 60_000,
      intervalMs: 10,
      what: 'a multipart upload under way',
    });
    await agent.proc.kill('SIGKILL');
    expect(s3.pendingUploads().length).toBeGreaterThan(0);
    agent.restart();
    const job = await waitJob(cp, r.body.id);
    expect(job.state).toBe('failed');
    expect(job.error?.code).toBe('interrupted');
    await waitFor(async () => s3.pendingUploads().length === 0, {
      timeoutMs: 20_000,
      what: 'upload aborted',
    });
    const { readdirSync } = await import('node:fs');
    const all = readdirSync(path.join(s3.directory, s3.bucket), { recursive: true }).map(String);
    expect(all.filter((f) => f.includes('killed_') && f.includes('.meta.json'))).toEqual([]);
    await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online again' });
  });

  it('the standalone decrypt command and pg_restore recover the database with the control plane stopped', async () => {
    const s3Backup = await ownBackup('offline-decrypt');
    const exported = await cp.api<{ privateJwk: Record<string, string> }>('POST', '/api/v1/keys/kek/export');
    expect(exported.status).toBe(200);
    const dir = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-dr-')));
    const keyFile = path.join(dir, 'kek.json');
    writeFileSync(keyFile, JSON.stringify(exported.body), { mode: 0o600 });
    await cp.stop();
    const objectFile = path.join(s3.directory, s3.bucket, `${s3Backup.objectKey}._S3rver_object`);
    const metaFile = path.join(s3.directory, s3.bucket, `${s3Backup.objectKey}.meta.json._S3rver_object`);
    // Independently of the agent's code: the data key unwrapped with jose opens the first
    // segment with node:crypto, and the all-zero key does not (agents before 0.1.1 sealed
    // every backup under zeros, and their own reader did the same, so round trips passed).
    const meta = JSON.parse(readFileSync(metaFile, 'utf8'));
    const { plaintext: dataKey } = await compactDecrypt(
      meta.wrappedKey,
      await importJWK(exported.body.privateJwk, 'ECDH-ES+A256KW'),
    );
    const sealed = readFileSync(objectFile);
    expect(openFirstSegment(sealed, Buffer.from(dataKey))).toBe(true);
    expect(openFirstSegment(sealed, Buffer.alloc(32))).toBe(false);
    const out = path.join(dir, 'restored.pgdump');
    const r = await agent.run([
      'decrypt',
      '--key',
      keyFile,
      '--meta',
      metaFile,
      '--in',
      objectFile,
      '--out',
      out,
    ]);
    expect(r.code, r.lines.join('\n')).toBe(0);
    const db = await createDb();
    pgTool('pg_restore', [
      '--no-owner',
      '-h',
      '127.0.0.1',
      '-p',
      String(pgPort()),
      '-U',
      'postgres',
      '-d',
      db,
      out,
    ]);
    expect(await fingerprint(db)).toEqual(before);
    await cp.restart();
  });
});
