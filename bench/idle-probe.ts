/**
 * pnpm bench:idle — an enrolled, connected agent at rest: RSS, anonymous and file-backed memory
 * (/proc/<pid>/status), five seconds after it came online. The target is 60 MB.
 */
import { readFileSync } from 'node:fs';
import { cleanupAll, startAgent, startControlPlane, startPostgres, waitFor } from '@dbbackup/testkit';

const pg = await startPostgres();
const cp = await startControlPlane({ databaseUrl: await pg.createDatabase('cp') });
const agent = await startAgent(cp);
await waitFor(
  async () =>
    (await cp.api<{ status: string }>('GET', `/api/v1/agents/${agent.id}`)).body.status === 'online',
);
await new Promise((r) => setTimeout(r, 5000));
const s = readFileSync(`/proc/${agent.proc.child.pid}/status`, 'utf8');
console.log(
  s
    .split('\n')
    .filter((l) => /VmRSS|RssAnon|RssFile/.test(l))
    .join(' | '),
);
await agent.proc.kill('SIGTERM');
await cleanupAll();
await pg.stop();
process.exit(0);
