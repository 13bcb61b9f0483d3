import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  type ControlPlane,
  cleanupAll,
  type S3Server,
  startAgent,
  startS3,
  waitFor,
} from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Backup,
  committedInBucket,
  jobLogs,
  runBackup,
  s3Profile,
  smallPgTarget,
} from './backup-support.js';
import { controlPlane, getAgent } from './support.js';

let cp: ControlPlane;
let s3: S3Server;
let agent: Awaited<ReturnType<typeof startAgent>>;
let targetId: string;

beforeAll(async () => {
  cp = await controlPlane();
  s3 = await startS3();
  // Quick S3 retries, so that the injected listing failure is given up on in about a second.
  agent = await startAgent(cp, { env: { DBBACKUP_S3_RETRY_BASE_MS: '100' } });
  await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
  const storageId = await s3Profile(cp, s3, 'ret');
  targetId = await smallPgTarget(cp, agent.id, storageId, 'kept', 10);
}, 120_000);
afterAll(cleanupAll);

const inBucket = () => committedInBucket(s3);
/** Data objects in the bucket (with or without a meta.json). */
function dataInBucket(): string[] {
  const root = path.join(s3.directory, s3.bucket);
  return readdirSync(root, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.enc._S3rver_object'))
    .map((f) => f.slice(0, -'._S3rver_object'.length))
    .sort();
}
async function catalogue(): Promise<Backup[]> {
  return (await cp.api<{ items: Backup[] }>('GET', `/api/v1/backups?target=${targetId}`)).body.items;
}
async function backup() {
  const { job, backup } = await runBackup(cp, targetId);
  expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
  return { job, backup: backup! };
}

describe('retention applied by the agent', () => {
  const made: Backup[] = [];

  it('keep the last 2: after four backups the bucket and the catalogue hold exactly the two newest', async () => {
    const put = await cp.api('PUT', `/api/v1/targets/${targetId}/retention`, { policy: { keepLast: 2 } });
    expect(put.status).toBe(200);
    for (let i = 0; i < 4; i++) made.push((await backup()).backup);
    const newest = made
      .slice(-2)
      .map((b) => b.objectKey)
      .sort();
    expect(inBucket()).toEqual(newest);
    expect(dataInBucket()).toEqual(newest);
    expect((await catalogue()).map((b) => b.objectKey).sort()).toEqual(newest);
    // The deleted ones are tombstones with the reason.
    const all = (
      await cp.api<{ items: (Backup & { deletedReason: string | null })[] }>(
        'GET',
        `/api/v1/backups?target=${targetId}&deleted=true`,
      )
    ).body.items;
    expect(
      all
        .filter((b) => b.deletedReason)
        .map((b) => b.objectKey)
        .sort(),
    ).toEqual(
      made
        .slice(0, 2)
        .map((b) => b.objectKey)
        .sort(),
    );
    const preview = await cp.api<{ keep: { id: string }[]; delete: unknown[] }>(
      'GET',
      `/api/v1/targets/${targetId}/retention/preview`,
    );
    expect(preview.body.keep.map((k) => k.id).sort()).toEqual(
      made
        .slice(-2)
        .map((b) => b.id)
        .sort(),
    );
    expect(preview.body.delete).toEqual([]);
  });

  for (const fault of ['error', 'truncated'] as const) {
    it(`an S3 listing that ${fault === 'error' ? 'fails' : 'comes back truncated'} deletes nothing and says so`, async () => {
      const before = inBucket();
      s3.faults.list = fault;
      try {
        const { job, backup: b } = await backup();
        made.push(b);
        expect(await jobLogs(cp, job.id)).toMatch(/retention: listing .* failed, nothing deleted/);
      } finally {
        s3.faults.list = null;
      }
      expect(inBucket()).toEqual([...before, made.at(-1)!.objectKey].sort());
    }, 120_000);
  }

  it('with listings working again the next backup brings it back to the policy', async () => {
    made.push((await backup()).backup);
    expect(inBucket()).toEqual(
      made
        .slice(-2)
        .map((b) => b.objectKey)
        .sort(),
    );
    expect((await catalogue()).length).toBe(2);
  });

  it('cleanup --older-than 30d (not a dry run): the agent removes what storage says is older, meta.json first', async () => {
    // Make the older of the two kept backups 60 days old, in its meta.json only (what storage says wins).
    const old = made.at(-2)!;
    const metaFile = path.join(s3.directory, s3.bucket, `${old.objectKey}.meta.json._S3rver_object`);
    const meta = JSON.parse(readFileSync(metaFile, 'utf8'));
    const sixtyDaysAgo = new Date(Date.now() - 60 * 86_400_000);
    meta.startTime = sixtyDaysAgo.toISOString();
    meta.endTime = sixtyDaysAgo.toISOString();
    writeFileSync(metaFile, JSON.stringify(meta));
    const r = await cp.api<{ commandId: string }>('POST', `/api/v1/targets/${targetId}/cleanup`, {
      olderThan: '30d',
    });
    expect(r.status).toBe(202);
    const { value } = await waitFor(
      async () => {
        const c = (
          await cp.api<{ state: string; result: { deleted: { objectKey: string }[] } }>(
            'GET',
            `/api/v1/commands/${r.body.commandId}`,
          )
        ).body;
        return ['succeeded', 'failed', 'expired'].includes(c.state) ? c : undefined;
      },
      { timeoutMs: 30_000, what: 'cleanup command' },
    );
    expect(value.state).toBe('succeeded');
    expect(value.result.deleted.map((d) => d.objectKey)).toEqual([old.objectKey]);
    expect(inBucket()).toEqual([made.at(-1)!.objectKey]);
    expect(dataInBucket()).toEqual([made.at(-1)!.objectKey]);
    await waitFor(async () => (await catalogue()).length === 1, {
      timeoutMs: 10_000,
      what: 'catalogue tombstone',
    });
  });

  it('cleanup --older-than 30d --dry-run shows what would go; bad input is a 422 that changes nothing', async () => {
    const dry = await cp.api<{ dryRun: boolean; delete: unknown[]; keep: unknown[] }>(
      'POST',
      `/api/v1/targets/${targetId}/cleanup`,
      {
        olderThan: '30d',
        dryRun: true,
      },
    );
    expect(dry.status).toBe(200);
    expect(dry.body.dryRun).toBe(true);
    expect(dry.body.delete).toEqual([]);
    expect(dry.body.keep).toHaveLength(1);
    const bad = await cp.api<{ detail: string }>('POST', `/api/v1/targets/${targetId}/cleanup`, {
      olderThan: '30x',
    });
    expect(bad.status).toBe(422);
    expect(bad.body.detail).toMatch(/olderThan/);
    expect(inBucket()).toHaveLength(1);
    const badPolicy = await cp.api('PUT', `/api/v1/targets/${targetId}/retention`, {
      policy: { keepLast: 0 },
    });
    expect(badPolicy.status).toBe(422);
  });
});
