/**
 * pnpm bench:ui — the dashboard at scale: 1 000 targets and 200 000 catalogued backups (and
 * as many backup jobs) seeded straight into the control plane's database, then
 *   - the API time of the aggregate endpoints (median and p95 of 15 calls after 3 warm-ups),
 *     against a baseline in the same process (GET /api/v1/agents/summary, one tiny query);
 *   - in Debian's Chromium: the time from "Log in" to the overview's first render (its
 *     one-line state), and from clicking Databases to the table holding every row.
 * BENCH_UI_TARGETS and BENCH_UI_BACKUPS change the sizes.
 */
import { cleanupAll, query, startControlPlane, startPostgres } from '@dbbackup/testkit';
import { launchChromium } from '../test/browser-support.js';

const TARGETS = Number(process.env.BENCH_UI_TARGETS ?? 1000);
const BACKUPS = Number(process.env.BENCH_UI_BACKUPS ?? 200_000);
const PASSWORD = 'bench password, long enough';

async function seed(url: string) {
  const per = Math.ceil(BACKUPS / TARGETS);
  // Loaded in bulk with the per-row triggers off; the dashboard's aggregates are rebuilt once after.
  const bulk = (q: string) =>
    query(url, `SET session_replication_role = replica; ${q}; SET session_replication_role = origin`);
  await query(
    url,
    `INSERT INTO agents (id, hostname, agent_version, signing_jwk, status, last_seen_at)
       SELECT gen_random_uuid(), 'host-' || lpad(i::text, 3, '0'), '0.1.2', '{}',
              CASE WHEN i % 25 = 0 THEN 'offline' ELSE 'online' END, now()
         FROM generate_series(1, 50) i`,
  );
  await query(
    url,
    `INSERT INTO storage_profiles (id, name, kind, config) VALUES (gen_random_uuid(), 'bench', 'local', '{"directory": "/tmp/bench"}')`,
  );
  await query(
    url,
    `INSERT INTO targets (id, agent_id, engine, name, connection, secret_ref, options, storage_id)
       SELECT gen_random_uuid(), a.id, 'postgresql', 'db-' || lpad(i::text, 5, '0'), '{}', '{"kind": "none"}', '{}', s.id
         FROM generate_series(1, ${TARGETS}) i
         JOIN (SELECT id, row_number() OVER (ORDER BY hostname) - 1 AS n FROM agents) a ON a.n = i % 50
         CROSS JOIN (SELECT id FROM storage_profiles LIMIT 1) s`,
  );
  // One backup every 12 h per target, back from now; the oldest past 60 days deleted by retention.
  await bulk(
    `INSERT INTO backups (id, target_id, agent_id, storage_id, object_key, meta_key, filename, size_bytes, sha256,
                          status, started_at, finished_at, meta, deleted_at)
       SELECT gen_random_uuid(), t.id, t.agent_id, t.storage_id, t.id || '/' || g, t.id || '/' || g || '.meta.json',
              'f', 50000000 + g * 1000, 'x', 'completed', now() - g * interval '12 hours',
              now() - g * interval '12 hours' + interval '3 minutes', '{}',
              CASE WHEN g > 120 THEN now() - (g - 120) * interval '12 hours' END
         FROM targets t CROSS JOIN generate_series(1, ${per}) g`,
  );
  // A backup job for each, 2 % of them failed (a target in 20 failed its newest).
  await bulk(
    `INSERT INTO jobs (id, type, state, agent_id, target_id, origin, created_at, started_at, finished_at)
       SELECT gen_random_uuid(), 'backup',
              CASE WHEN (g = 1 AND abs(hashtext(t.id::text)) % 20 = 0) OR abs(hashtext(t.id::text || g)) % 50 = 0
                   THEN 'failed' ELSE 'succeeded' END,
              t.agent_id, t.id, 'schedule', now() - g * interval '12 hours', now() - g * interval '12 hours',
              now() - g * interval '12 hours' + interval '3 minutes'
         FROM targets t CROSS JOIN generate_series(1, ${per}) g`,
  );
  await bulk(
    `INSERT INTO alerts (id, kind, state, target_id, subject, message, details)
       SELECT gen_random_uuid(), 'backup_missed', 'firing', t.id, 'target:' || t.id, 'missed', '{}'
         FROM targets t WHERE abs(hashtext(t.name)) % 40 = 0`,
  );
  await query(url, 'SELECT dbb_rebuild_activity()');
  await query(url, 'ANALYZE');
}

async function timed(fn: () => Promise<unknown>, runs = 15) {
  for (let i = 0; i < 3; i++) await fn();
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  return {
    median: ms[Math.floor(ms.length / 2)]!,
    p95: ms[Math.min(ms.length - 1, Math.ceil(ms.length * 0.95) - 1)]!,
  };
}

async function main() {
  const pg = await startPostgres();
  const url = await pg.createDatabase('ui');
  const cp = await startControlPlane({ databaseUrl: url });
  const t0 = performance.now();
  await seed(url);
  const counts = (
    await query<{ t: number; b: number; j: number }>(
      url,
      'SELECT (SELECT count(*) FROM targets)::int AS t, (SELECT count(*) FROM backups)::int AS b, (SELECT count(*) FROM jobs)::int AS j',
    )
  )[0]!;
  if (process.env.BENCH_UI_KEEP) {
    console.log(`kept for inspection: ${url}`);
    await new Promise(() => {});
  }
  console.log(
    `seeded ${counts.t} targets, ${counts.b} backups, ${counts.j} jobs in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  const get = (p: string) => async () => {
    const r = await cp.api('GET', p);
    if (r.status !== 200) throw new Error(`${p}: ${r.status} ${JSON.stringify(r.body)}`);
  };
  const base = await timed(get('/api/v1/agents/summary'));
  console.log('\nAPI (median / p95 of 15 calls, ratio of medians to the baseline)');
  console.log(
    `  baseline GET /api/v1/agents/summary   ${base.median.toFixed(1)} / ${base.p95.toFixed(1)} ms`,
  );
  // A database's page: the target with the most backups.
  const busiest = (
    await query<{ id: string; n: number }>(
      url,
      'SELECT target_id AS id, count(*)::int AS n FROM backups GROUP BY target_id ORDER BY n DESC LIMIT 1',
    )
  )[0]!;
  for (const p of [
    '/api/v1/dashboard/overview',
    '/api/v1/dashboard/targets',
    `/api/v1/dashboard/targets/${busiest.id}`,
    `/api/v1/targets/${busiest.id}/retention/preview`,
  ]) {
    const r = await timed(get(p));
    console.log(
      `  GET ${p.replace(busiest.id, ':id').padEnd(40)} ${r.median.toFixed(1)} / ${r.p95.toFixed(1)} ms   ${(r.median / base.median).toFixed(1)}x`,
    );
  }

  await cp.api('POST', '/api/v1/users', { username: 'bench', password: PASSWORD, role: 'viewer' });
  const browser = await launchChromium();
  const overview: number[] = [];
  const table: number[] = [];
  const detail: number[] = [];
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${cp.url}/`);
  await page.getByLabel('Username').fill('bench');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByTestId('fleet-sentence').waitFor();
  for (let i = 0; i < 5; i++) {
    // A signed-in engineer opening the dashboard: navigation to the overview's one-line state.
    let t = performance.now();
    await page.goto(`${cp.url}/`);
    await page.getByTestId('fleet-sentence').waitFor();
    overview.push(performance.now() - t);
    t = performance.now();
    await page.getByRole('link', { name: 'Databases' }).click();
    await page.getByText(`${counts.t} of ${counts.t} databases`).waitFor({ timeout: 60_000 });
    await page
      .locator('table.databases tbody tr')
      .nth(Math.min(99, counts.t - 1))
      .waitFor();
    table.push(performance.now() - t);
  }
  // A database's page, measured apart: its sections' reads must not overlap the overview's.
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    await page.goto(`${cp.url}/databases/${busiest.id}`);
    await page
      .locator('[data-testid^="backup-"]')
      .nth(Math.min(49, busiest.n - 1))
      .waitFor({ timeout: 60_000 });
    detail.push(performance.now() - t);
  }
  await context.close();
  await browser.close();
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log('\nBrowser (median of 5, Chromium headless)');
  console.log(`  open / -> the overview's first render       ${med(overview).toFixed(0)} ms`);
  console.log(`  Databases -> ${counts.t} sorted, first page drawn  ${med(table).toFixed(0)} ms`);
  console.log(
    `  open a database's page (${busiest.n} backups) -> its 50 newest drawn  ${med(detail).toFixed(0)} ms`,
  );
  await cleanupAll();
}

main().catch(async (err) => {
  console.error(err);
  await cleanupAll();
  process.exit(1);
});
