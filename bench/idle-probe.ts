/**
 * pnpm bench:idle — an enrolled, connected agent at rest: RSS, anonymous and file-backed memory
 * (/proc/<pid>/status), five seconds after it came online; then the same agent keeping one
 * daily schedule in a named time zone (PROBE_TZ, default Europe/Berlin: croner, and the ICU
 * time-zone data it loads; UTC needs none).
 * The target is 60 MB.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cleanupAll, startAgent, startControlPlane, startPostgres, waitFor } from '@dbbackup/testkit';

const pg = await startPostgres();
const cp = await startControlPlane({ databaseUrl: await pg.createDatabase('cp') });
const agent = await startAgent(cp);
await waitFor(
  async () =>
    (await cp.api<{ status: string }>('GET', `/api/v1/agents/${agent.id}`)).body.status === 'online',
);
const pid = agent.proc.child.pid;
const memory = () =>
  readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .filter((l) => /VmRSS|RssAnon|RssFile/.test(l))
    .map((l) => l.replace(/\s+/g, ' '))
    .join(' | ');
await new Promise((r) => setTimeout(r, 5000));
console.log(`idle, no schedule:       ${memory()}`);

const storageId = (
  await cp.api<{ id: string }>('POST', '/api/v1/storage', {
    kind: 'local',
    name: 'idle-probe',
    directory: mkdtempSync(path.join(tmpdir(), 'dbb-idle-')),
  })
).body.id;
await pg.createDatabase('probe');
const target = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agent.id}/targets`, {
  engine: 'postgresql',
  name: 'probe',
  connection: { host: '127.0.0.1', port: pg.port, database: 'probe', user: 'postgres' },
  storageId,
});
if (target.status !== 201) throw new Error(`target: ${target.status} ${JSON.stringify(target.body)}`);
await new Promise((r) => setTimeout(r, 5000));
console.log(`idle, one target:        ${memory()}`);
const tz = process.env.PROBE_TZ ?? 'Europe/Berlin';
const schedule = await cp.api('POST', `/api/v1/targets/${target.body.id}/schedules`, {
  cron: '0 3 * * *',
  timezone: tz,
});
if (schedule.status !== 201) throw new Error(`schedule: ${schedule.status} ${JSON.stringify(schedule.body)}`);
await waitFor(async () => agent.proc.lines.some((l) => l.includes('"schedules":1')), {
  timeoutMs: 30_000,
  what: 'the agent to load the schedule',
});
await new Promise((r) => setTimeout(r, 5000));
console.log(`idle, one schedule (${tz}): ${memory()}`);
await agent.proc.kill('SIGTERM');
await cleanupAll();
await pg.stop();
process.exit(0);
