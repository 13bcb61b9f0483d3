/**
 * The README's start command: the control plane on embedded defaults and, beside
 * it, a local agent enrolled to it with a local-disk storage profile, backing up
 * the control plane's own database (the platform backs itself up).
 *
 *   DBBACKUP_DATA_DIR (default ./data) holds everything: control-plane/, agent/, backups/.
 *   DBBACKUP_PORT     (default 8080)
 *   DBBACKUP_NO_LOCAL_AGENT=1 starts the control plane alone.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const data = path.resolve(process.env.DBBACKUP_DATA_DIR ?? path.join(root, 'data'));
const port = Number(process.env.DBBACKUP_PORT ?? 8080);
const pgPort = Number(process.env.DBBACKUP_EMBEDDED_PG_PORT ?? 54329);
const server = `http://127.0.0.1:${port}`;
const cpDir = path.join(data, 'control-plane');
const agentDir = path.join(data, 'agent');
const children: ChildProcess[] = [];

const say = (m: string) => process.stderr.write(`dbbackup: ${m}\n`);

function stopAll(code: number) {
  for (const c of children) c.kill('SIGTERM');
  setTimeout(() => process.exit(code), 8000).unref();
  Promise.all(
    children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)))),
  ).then(() => process.exit(code));
}
process.on('SIGINT', () => stopAll(0));
process.on('SIGTERM', () => stopAll(0));

async function api<T>(
  method: string,
  p: string,
  token: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const res = await fetch(`${server}${p}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

function pgDumpMajor(): number | undefined {
  const dirs = existsSync('/usr/lib/postgresql')
    ? readdirSync('/usr/lib/postgresql').map((m) => `/usr/lib/postgresql/${m}/bin/pg_dump`)
    : [];
  let best: number | undefined;
  for (const f of [...dirs, 'pg_dump']) {
    try {
      const m = /\(PostgreSQL\)\s+(\d+)/.exec(execFileSync(f, ['--version']).toString());
      if (m) best = Math.max(best ?? 0, Number(m[1]));
    } catch {}
  }
  return best;
}

async function main() {
  mkdirSync(data, { recursive: true });
  const cp = spawn(path.join(root, 'control-plane/bin/dbbackup-control-plane'), [], {
    env: { ...process.env, DBBACKUP_DATA_DIR: cpDir, DBBACKUP_PORT: String(port) },
    stdio: 'inherit',
  });
  children.push(cp);
  cp.on('exit', (code) => {
    say(`control plane exited (${code})`);
    stopAll(code ?? 1);
  });
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${server}/readyz`)).ok) break;
    } catch {}
    if (i > 600) throw new Error('control plane did not become ready');
    await new Promise((r) => setTimeout(r, 200));
  }
  const token = readFileSync(path.join(cpDir, 'admin-token'), 'utf8').trim();
  await dashboardUser(token);
  if (process.env.DBBACKUP_NO_LOCAL_AGENT === '1') return;
  const agentBin = path.join(root, 'agent/bin/dbbackup-agent');

  if (!existsSync(path.join(agentDir, 'agent.json'))) {
    const enr = await api<{ token: string }>('POST', '/api/v1/enrollment-tokens', token, {
      labels: { env: 'local' },
    });
    execFileSync(
      agentBin,
      ['enroll', '--server', server, '--token', enr.body.token, '--state-dir', agentDir],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    say(`local agent enrolled (state in ${agentDir})`);
  }
  const agentLog = createWriteStream(path.join(data, 'agent.log'), { flags: 'a' });
  const agent = spawn(agentBin, ['run', '--state-dir', agentDir], {
    env: { ...process.env, DBBACKUP_SECRETS_FILE: path.join(data, 'agent-secrets.json') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  agent.stdout?.pipe(agentLog);
  agent.stderr?.pipe(agentLog);
  children.push(agent);
  const agentId = JSON.parse(readFileSync(path.join(agentDir, 'agent.json'), 'utf8')).agentId as string;
  say(`local agent ${agentId} running (log: ${path.join(data, 'agent.log')})`);

  const major = pgDumpMajor();
  if (!major || major < 15) {
    say(
      'pg_dump 15 or newer is not installed, so the self-backup is off. On Debian/Ubuntu: sudo apt-get install postgresql-client-15 zstd',
    );
    return;
  }
  for (let i = 0; i < 100; i++) {
    if ((await api<{ status: string }>('GET', `/api/v1/agents/${agentId}`, token)).body.status === 'online')
      break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const storages = await api<{ items: { id: string; name: string }[] }>('GET', '/api/v1/storage', token);
  let storageId = storages.body.items.find((s) => s.name === 'local-disk')?.id;
  if (!storageId) {
    const s = await api<{ id: string }>('POST', '/api/v1/storage', token, {
      kind: 'local',
      name: 'local-disk',
      directory: path.join(data, 'backups'),
    });
    storageId = s.body.id;
  }
  const targets = await api<{ items: { id: string; name: string }[] }>(
    'GET',
    `/api/v1/agents/${agentId}/targets`,
    token,
  );
  let targetId = targets.body.items.find((t) => t.name === 'control-plane')?.id;
  if (!targetId) {
    // The embedded server's password, declared on this host as a secret bound to that server.
    const pw = readFileSync(path.join(cpDir, 'postgres.password'), 'utf8').trim();
    const secrets = path.join(data, 'agent-secrets.json');
    writeFileSync(
      secrets,
      `${JSON.stringify({ 'control-plane-db': { password: pw, allow: [`127.0.0.1:${pgPort}`] } }, null, 2)}\n`,
      { mode: 0o600 },
    );
    const t = await api<{ id: string; detail?: string }>('POST', `/api/v1/agents/${agentId}/targets`, token, {
      engine: 'postgresql',
      name: 'control-plane',
      connection: { host: '127.0.0.1', port: pgPort, database: 'dbbackup', user: 'postgres' },
      secretRef: { kind: 'secret', name: 'control-plane-db' },
      storageId,
    });
    if (t.status !== 201) {
      say(`could not add the self-backup target: ${t.body.detail}`);
      return;
    }
    targetId = t.body.id;
  }
  const job = await api<{ id: string }>('POST', `/api/v1/targets/${targetId}/backups`, token);
  say(`backing up the control plane's own database (job ${job.body.id}); list backups with:`);
  say(
    `  curl -s -H "authorization: Bearer $(cat ${path.join(cpDir, 'admin-token')})" ${server}/api/v1/backups`,
  );
  const enr = await api<{ installCommand: string | null }>('POST', '/api/v1/enrollment-tokens', token, {});
  if (enr.status === 201 && enr.body.installCommand) {
    say('to add a database host, run there (a one-time token, valid 24 h; set DBBACKUP_PUBLIC_URL');
    say('to the address other hosts reach this control plane at, instead of 127.0.0.1):');
    say(`  ${enr.body.installCommand}`);
  }
}

/**
 * The web dashboard at / needs a user: the first start makes `admin` with a random password,
 * kept in ./data/control-plane/admin-password (0600) and never printed.
 */
async function dashboardUser(token: string) {
  const file = path.join(cpDir, 'admin-password');
  if (!existsSync(file)) {
    const password = randomBytes(18).toString('base64url');
    const r = await api<{ detail?: string }>('POST', '/api/v1/users', token, {
      username: 'admin',
      password,
      role: 'admin',
    });
    if (r.status !== 201) {
      say(`no dashboard user made: ${r.body?.detail ?? r.status}`);
      return;
    }
    writeFileSync(file, `${password}\n`, { mode: 0o600 });
  }
  say(`web dashboard: ${server}/ (log in as admin; the password is in ${file})`);
}

main().catch((err) => {
  say(`start failed: ${(err as Error).message}`);
  stopAll(1);
});
