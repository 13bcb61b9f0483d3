import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { type ControlPlane, postgresBinDir, query, type S3Server, waitFor } from '@dbbackup/testkit';
import { inject } from 'vitest';

export type Job = {
  id: string;
  state: string;
  error: { code: string; message: string } | null;
  result: Record<string, unknown> | null;
  progress: Record<string, unknown>;
};
export type Backup = {
  id: string;
  objectKey: string;
  filename: string;
  sizeBytes: number;
  sha256: string;
  meta: Record<string, unknown>;
};

export const adminUrl = () => inject('pgAdminUrl');
export const dbUrl = (name: string) => adminUrl().replace(/\/[^/]*$/, `/${name}`);
export const pgPort = () => Number(new URL(adminUrl()).port);

export async function createDb(name = `src_${randomUUID().slice(0, 8)}`) {
  await query(adminUrl(), `CREATE DATABASE ${name}`);
  return name;
}

export function pgTool(tool: string, args: string[], env: Record<string, string> = {}): string {
  return execFileSync(`${postgresBinDir()}/${tool}`, args, {
    env: { ...process.env, ...env },
    maxBuffer: 512 * 1024 * 1024,
  }).toString();
}

/** pgbench data, a second schema, bytea and a large object. */
export async function seedDatabase(name: string, scale = 5) {
  pgTool('pgbench', [
    '-i',
    '-s',
    String(scale),
    '-q',
    '-h',
    '127.0.0.1',
    '-p',
    String(pgPort()),
    '-U',
    'postgres',
    name,
  ]);
  await query(
    dbUrl(name),
    `CREATE SCHEMA extra;
     CREATE TABLE extra.blobs (id int PRIMARY KEY, data bytea NOT NULL, note text);
     INSERT INTO extra.blobs SELECT g, decode(md5(g::text) || md5((g*7)::text), 'hex'), 'row ' || g FROM generate_series(1, 2000) g;
     CREATE TABLE extra.docs (id serial PRIMARY KEY, lo oid);
     INSERT INTO extra.docs (lo) VALUES (lo_from_bytea(0, convert_to(repeat('large object ', 5000), 'UTF8')));`,
  );
}

/** What must survive a round trip: schema, every row count, and an ordered hash of pgbench_accounts. */
export async function fingerprint(name: string) {
  const schema = pgTool('pg_dump', [
    '-s',
    '--no-owner',
    '-h',
    '127.0.0.1',
    '-p',
    String(pgPort()),
    '-U',
    'postgres',
    name,
  ])
    .split('\n')
    .filter((l) => !l.startsWith('--') && !l.startsWith('\\restrict') && !l.startsWith('\\unrestrict'))
    .join('\n');
  const counts = await query<{ t: string; n: string }>(
    dbUrl(name),
    `SELECT format('%I.%I', schemaname, relname) AS t,
            (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', schemaname, relname), false, true, '')))[1]::text AS n
       FROM pg_stat_user_tables ORDER BY 1`,
  );
  const md5 = await query<{ h: string }>(
    dbUrl(name),
    "SELECT md5(string_agg(aid::text || ':' || bid || ':' || abalance || ':' || filler, ',' ORDER BY aid)) AS h FROM pgbench_accounts",
  );
  const lo = await query<{ h: string }>(
    dbUrl(name),
    "SELECT md5(string_agg(md5(lo_get(lo)), ',' ORDER BY id)) AS h FROM extra.docs",
  );
  const bytea = await query<{ h: string }>(
    dbUrl(name),
    "SELECT md5(string_agg(md5(data), ',' ORDER BY id)) AS h FROM extra.blobs",
  );
  return {
    schema,
    counts: Object.fromEntries(counts.map((c) => [c.t, Number(c.n)])),
    accounts: md5[0]?.h,
    lo: lo[0]?.h,
    bytea: bytea[0]?.h,
  };
}

export async function waitJob(cp: ControlPlane, jobId: string, timeoutMs = 120_000): Promise<Job> {
  const { value } = await waitFor(
    async () => {
      const j = (await cp.api<Job>('GET', `/api/v1/jobs/${jobId}`)).body;
      return ['succeeded', 'failed', 'cancelled'].includes(j.state) ? j : undefined;
    },
    { timeoutMs, intervalMs: 200, what: `job ${jobId}` },
  );
  return value;
}

export async function runBackup(cp: ControlPlane, targetId: string): Promise<{ job: Job; backup?: Backup }> {
  const r = await cp.api<Job>('POST', `/api/v1/targets/${targetId}/backups`);
  if (r.status !== 202) throw new Error(`backup: ${r.status} ${JSON.stringify(r.body)}`);
  const job = await waitJob(cp, r.body.id);
  if (job.state !== 'succeeded') return { job };
  const backupId = (job.result as { backupId: string }).backupId;
  const backup = (await cp.api<Backup>('GET', `/api/v1/backups/${backupId}`)).body;
  return { job, backup };
}

export async function jobLogs(cp: ControlPlane, jobId: string) {
  return (await cp.api<{ items: { message: string }[] }>('GET', `/api/v1/jobs/${jobId}/logs`)).body.items
    .map((i) => i.message)
    .join('\n');
}

/** A storage profile on the test's s3rver (path-style, its one access key). */
export async function s3Profile(
  cp: ControlPlane,
  s3: S3Server,
  prefix: string,
  name = 's3rver',
): Promise<string> {
  const r = await cp.api<{ id: string }>('POST', '/api/v1/storage', {
    kind: 's3',
    name,
    endpoint: s3.endpoint,
    bucket: s3.bucket,
    prefix,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  if (r.status !== 201) throw new Error(`storage: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.id;
}

/** Every committed backup in the s3rver bucket: the object keys that have a meta.json beside them. */
export function committedInBucket(s3: S3Server): string[] {
  return readdirSync(path.join(s3.directory, s3.bucket), { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.meta.json._S3rver_object'))
    .map((f) => f.slice(0, -'.meta.json._S3rver_object'.length))
    .sort();
}

/** A fresh database with one small table, as a PostgreSQL target of `agentId` on `storageId`. */
export async function smallPgTarget(
  cp: ControlPlane,
  agentId: string,
  storageId: string,
  name: string,
  rows = 100,
): Promise<string> {
  const db = await createDb();
  await query(
    dbUrl(db),
    `CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, ${rows});`,
  );
  const r = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agentId}/targets`, {
    engine: 'postgresql',
    name,
    connection: { host: '127.0.0.1', port: pgPort(), database: db, user: 'postgres' },
    storageId,
  });
  if (r.status !== 201) throw new Error(`target: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.id;
}

/** Wait until no job of the target is queued, running or stalled and its catalogue stopped changing. */
export async function waitTargetSettled(cp: ControlPlane, targetId: string, timeoutMs = 60_000) {
  let last = '';
  await waitFor(
    async () => {
      const ids = (
        await cp.api<{ items: { id: string }[] }>('GET', `/api/v1/backups?target=${targetId}`)
      ).body.items
        .map((b) => b.id)
        .sort()
        .join(',');
      const jobs = (await cp.api<{ items: { state: string }[] }>('GET', `/api/v1/jobs?target=${targetId}`))
        .body.items;
      const settled = jobs.every((j) => !['running', 'queued', 'stalled'].includes(j.state));
      const same = settled && ids === last;
      last = ids;
      return same;
    },
    { timeoutMs, intervalMs: 1500, what: 'the catalogue to settle' },
  );
}

/**
 * The name of the WAL segment a physical base backup starts in, worked out here from its
 * engineMeta (timeline, start LSN, segment size) rather than by the product's own code.
 */
export function firstSegmentOf(em: Record<string, string>): string {
  const [hi, lo] = em.startLsn!.split('/').map((x) => BigInt(`0x${x}`));
  const perId = 0x1_0000_0000n / BigInt(em.walSegmentBytes!);
  const segno = ((hi! << 32n) | lo!) / BigInt(em.walSegmentBytes!);
  const hex = (n: bigint) => n.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(BigInt(em.timeline!))}${hex(segno / perId)}${hex(segno % perId)}`;
}
