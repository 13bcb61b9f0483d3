import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type ControlPlane,
  cleanupAll,
  REPO_ROOT,
  type S3Server,
  startAgent,
  startS3,
  trackDir,
  waitFor,
} from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { runBackup, s3Profile, waitJob } from './backup-support.js';
import { controlPlane, getAgent } from './support.js';

const METRICS_TOKEN = 'metrics-scrape-token-0123456789';
let cp: ControlPlane;
let work: string;
let text: string;
let targetId: string;
let backup: { id: string; sizeBytes: number; finishedAt: string };
let s3: S3Server;
let retriesReported: number;

/** `name{labels} value` lines of the exposition → value by series. */
function series(exposition: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of exposition.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}
const value = (s: Map<string, number>, name: string, labels: Record<string, string> = {}) => {
  for (const [k, v] of s) {
    const m = /^([a-z_:]+)(?:\{(.*)\})?$/.exec(k);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([lk, lv]) => have[lk] === lv)) return v;
  }
  return undefined;
};

beforeAll(async () => {
  cp = await controlPlane({ env: { DBBACKUP_METRICS_TOKEN: METRICS_TOKEN } });
  work = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-metrics-')));
  const agent = await startAgent(cp, { env: { DBBACKUP_S3_RETRY_BASE_MS: '50' } });
  await waitFor(async () => (await getAgent(cp, agent.id)).status === 'online', { what: 'online' });
  const s = await cp.api<{ id: string }>('POST', '/api/v1/storage', {
    kind: 'local',
    name: 'disk',
    directory: path.join(work, 'backups'),
  });
  const db = path.join(work, 'app.db');
  execFileSync('sqlite3', [db, 'CREATE TABLE t(v); INSERT INTO t VALUES (1),(2);']);
  const t = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agent.id}/targets`, {
    engine: 'sqlite',
    name: 'app',
    connection: { path: db },
    storageId: s.body.id,
  });
  targetId = t.body.id;
  const ok = await runBackup(cp, targetId);
  expect(ok.job.state).toBe('succeeded');
  backup = ok.backup as unknown as typeof backup;
  const restore = await cp.api<{ id: string }>('POST', `/api/v1/backups/${backup.id}/restore`, {
    database: path.join(work, 'copy.db'),
  });
  expect((await waitJob(cp, restore.body.id)).state).toBe('succeeded');
  // A second target whose file is gone: its backup fails.
  const gone = path.join(work, 'gone.db');
  execFileSync('sqlite3', [gone, 'CREATE TABLE t(v);']);
  const t2 = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agent.id}/targets`, {
    engine: 'sqlite',
    name: 'gone',
    connection: { path: gone },
    storageId: s.body.id,
  });
  rmSync(gone);
  expect((await runBackup(cp, t2.body.id)).job.state).toBe('failed');
  // To S3 with two transient errors on the way: retried, and counted.
  s3 = await startS3('metrics-bucket');
  const s3Id = await s3Profile(cp, s3, 'metrics');
  const t3 = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agent.id}/targets`, {
    engine: 'sqlite',
    name: 'app-to-s3',
    connection: { path: db },
    storageId: s3Id,
  });
  s3.faults.putErrors = 2;
  const viaS3 = await runBackup(cp, t3.body.id);
  expect(viaS3.job.state, JSON.stringify(viaS3.job.error)).toBe('succeeded');
  expect(s3.faults.putErrors).toBe(0);
  retriesReported = (viaS3.job.result as { uploadRetries: number }).uploadRetries;
  const r = await fetch(`${cp.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  expect(r.status).toBe(200);
  text = await r.text();
});
afterAll(cleanupAll);

describe('GET /metrics', () => {
  it('needs the bearer token when one is configured', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong-token-0123456789' }] as Record<
      string,
      string
    >[]) {
      const r = await fetch(`${cp.url}/metrics`, { headers });
      expect(r.status).toBe(401);
      expect(r.headers.get('content-type')).toMatch(/problem\+json/);
    }
  });

  it('reports backups, restores, sizes, uploads, agents, last success, RPO and dispatch latency from real jobs', () => {
    const s = series(text);
    expect(value(s, 'dbbackup_backup_duration_seconds_count', { dbtype: 'sqlite', result: 'success' })).toBe(
      2,
    );
    expect(retriesReported).toBe(2);
    expect(value(s, 'dbbackup_backup_retry_count', { dbtype: 'sqlite' })).toBe(2);
    expect(value(s, 'dbbackup_upload_duration_seconds_count', { provider: 's3' })).toBe(1);
    expect(value(s, 'dbbackup_backup_duration_seconds_count', { dbtype: 'sqlite', result: 'failure' })).toBe(
      1,
    );
    expect(value(s, 'dbbackup_backup_size_bytes_count', { dbtype: 'sqlite' })).toBe(2);
    expect(value(s, 'dbbackup_backup_size_bytes_sum', { dbtype: 'sqlite' })).toBeGreaterThan(
      backup.sizeBytes,
    );
    expect(value(s, 'dbbackup_upload_duration_seconds_count', { provider: 'local' })).toBe(1);
    expect(value(s, 'dbbackup_restore_duration_seconds_count', { dbtype: 'sqlite', result: 'success' })).toBe(
      1,
    );
    expect(value(s, 'dbbackup_agents', { status: 'online' })).toBe(1);
    expect(value(s, 'dbbackup_agents', { status: 'offline' })).toBe(0);
    const last = value(s, 'dbbackup_last_success_timestamp_seconds', { target_id: targetId, target: 'app' });
    expect(last).toBeCloseTo(new Date(backup.finishedAt).getTime() / 1000, 0);
    const rpo = value(s, 'dbbackup_rpo_seconds', { target_id: targetId, dbtype: 'sqlite' }) as number;
    expect(rpo).toBeGreaterThanOrEqual(0);
    expect(rpo).toBeLessThan(300);
    // The failed target has no success: no last-success series for it.
    expect(value(s, 'dbbackup_last_success_timestamp_seconds', { target: 'gone' })).toBeUndefined();
    expect(value(s, 'dbbackup_command_dispatch_latency_seconds_count')).toBeGreaterThanOrEqual(3);
  });

  it('has every metric the Grafana dashboard and the alert rules use', () => {
    const declared = new Set([...text.matchAll(/^# TYPE (\S+) (\w+)/gm)].map((m) => m[1] as string));
    const histograms = new Set([...text.matchAll(/^# TYPE (\S+) histogram/gm)].map((m) => m[1] as string));
    const exists = (name: string) => {
      if (declared.has(name)) return true;
      const base = name.replace(/_(bucket|sum|count)$/, '');
      return base !== name && histograms.has(base);
    };
    const dashboard = JSON.parse(readFileSync(path.join(REPO_ROOT, 'deploy/grafana-dashboard.json'), 'utf8'));
    const dashExprs: string[] = dashboard.panels.flatMap((p: { targets: { expr: string }[] }) =>
      p.targets.map((t) => t.expr),
    );
    const rules = parseYaml(readFileSync(path.join(REPO_ROOT, 'deploy/prometheus-alerts.yml'), 'utf8'));
    const ruleList: { alert: string; expr: string }[] = rules.groups.flatMap(
      (g: { rules: unknown[] }) => g.rules,
    );
    expect(ruleList.map((r) => r.alert).sort()).toEqual(
      ['AgentOffline', 'BackupMissed', 'DBBackupFailed', 'HighBackupDuration'].sort(),
    );
    const used = new Set(
      [...dashExprs, ...ruleList.map((r) => r.expr)].flatMap((e) =>
        [...e.matchAll(/\bdbbackup_[a-z_]+/g)].map((m) => m[0]),
      ),
    );
    expect(used.size).toBeGreaterThanOrEqual(8);
    expect([...used].filter((n) => !exists(n))).toEqual([]);
    // The dashboard covers what the issue asks for.
    const titles = dashboard.panels.map((p: { title: string }) => p.title).join(' | ');
    for (const w of [
      /successes vs failures/i,
      /duration/i,
      /bytes .*per day/i,
      /success rate/i,
      /last backup/i,
      /agents online/i,
    ]) {
      expect(titles).toMatch(w);
    }
  });
});
