import { createWriteStream } from 'node:fs';
import { parseArgs } from 'node:util';
import { Api, ApiError, CliError, EXIT, readSaved, usage, writeSaved } from './api.js';

const HELP = `dbbackup — the dbbackup control plane from the command line

Connection: --server URL and --token TOKEN, or DBBACKUP_SERVER / DBBACKUP_TOKEN,
or what \`dbbackup login\` saved (owner-only file under ~/.config/dbbackup/).

  login --server URL (--token TOKEN | --username NAME)   password from DBBACKUP_PASSWORD or stdin
  status [--verbose]                      fleet summary
  agents ls | show AGENT | revoke AGENT
  enroll-token create [--label k=v ...] [--ttl SECONDS]   prints the install one-liner
  targets ls [--agent AGENT] | add --agent AGENT --engine E --name N --storage S
          [--host H --port P --database D --user U --path P --secret NAME]
        | discover AGENT
  backup TARGET [--wait]                  run a backup now (progress bar with --wait)
  restore BACKUP [--to DB] [--tables a,b] [--on-conflict fail|clean|create] [--wait]
  verify BACKUP | --target TARGET --latest [--wait]
  backups ls [--target TARGET]
  schedule ls TARGET | create TARGET --cron EXPR [--timezone TZ] | enable TARGET ID | disable TARGET ID
  cleanup TARGET --older-than 30d (--dry-run | --confirm)
  logs JOB [--follow]
  alerts ls [--state firing|resolved]
  audit export [--format jsonl|csv] [--out FILE]
  rotate-keys [--wait]

Every read takes --json. TARGET is a target's id or its name; AGENT an id or a host name.
Exit codes: 0 ok, 1 failure (a job failed, a conflict, the server unreachable),
2 usage (bad arguments, or the server refused the input), 3 not found, 4 not allowed.
`;

type Flags = Record<string, string | boolean | string[] | undefined>;
type Out = { json: boolean; write(s: string): void; err(s: string): void; tty: boolean };

const OPTIONS = {
  server: { type: 'string' },
  token: { type: 'string' },
  username: { type: 'string' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean', short: 'v' },
  wait: { type: 'boolean' },
  follow: { type: 'boolean', short: 'f' },
  label: { type: 'string', multiple: true },
  ttl: { type: 'string' },
  agent: { type: 'string' },
  engine: { type: 'string' },
  name: { type: 'string' },
  storage: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  database: { type: 'string' },
  user: { type: 'string' },
  path: { type: 'string' },
  secret: { type: 'string' },
  to: { type: 'string' },
  tables: { type: 'string' },
  'on-conflict': { type: 'string' },
  target: { type: 'string' },
  latest: { type: 'boolean' },
  cron: { type: 'string' },
  timezone: { type: 'string' },
  'older-than': { type: 'string' },
  'dry-run': { type: 'boolean' },
  confirm: { type: 'boolean' },
  state: { type: 'string' },
  format: { type: 'string' },
  out: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;

// ---------------------------------------------------------------- output

function table(out: Out, rows: Record<string, unknown>[], cols: string[]) {
  if (rows.length === 0) {
    out.write('(none)\n');
    return;
  }
  const cell = (v: unknown) => (v === null || v === undefined ? '-' : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) =>
    `${vals
      .map((v, i) => v.padEnd(widths[i] as number))
      .join('  ')
      .trimEnd()}\n`;
  out.write(line(cols.map((c) => c.toUpperCase())));
  for (const r of rows) out.write(line(cols.map((c) => cell(r[c]))));
}

function show(out: Out, value: unknown, human: () => void) {
  if (out.json) out.write(`${JSON.stringify(value, null, 2)}\n`);
  else human();
}

const bytes = (n: number | null | undefined) => {
  if (n === null || n === undefined) return '-';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i ? 1 : 0)} ${u[i]}`;
};

// ---------------------------------------------------------------- lookups

type Target = { id: string; name: string; engine: string; agentId: string; storageId: string };
type Agent = {
  id: string;
  hostname: string;
  status: string;
  agentVersion: string;
  lastSeenAt: string | null;
};
type Job = {
  id: string;
  type: string;
  state: string;
  progress: {
    phase?: string;
    bytesDumped?: number;
    bytesStored?: number;
    rateBytesPerSecond?: number | null;
  };
  result: Record<string, unknown> | null;
  error: { code: string; message: string } | null;
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function resolveTarget(api: Api, ref: string | undefined): Promise<Target> {
  if (!ref) throw usage('which target? give its id or name');
  if (UUID.test(ref)) return api.get<Target>(`/api/v1/targets/${ref}`);
  const all = (await api.get<{ items: Target[] }>('/api/v1/targets')).items.filter((t) => t.name === ref);
  if (all.length === 0) throw new CliError(`no target named ${JSON.stringify(ref)}`, EXIT.notFound);
  if (all.length > 1) throw usage(`${all.length} targets are named ${JSON.stringify(ref)}; use the id`);
  return all[0] as Target;
}

async function resolveAgent(api: Api, ref: string | undefined): Promise<Agent> {
  if (!ref) throw usage('which agent? give its id or host name');
  if (UUID.test(ref)) return api.get<Agent>(`/api/v1/agents/${ref}`);
  const all = (await api.get<{ items: Agent[] }>('/api/v1/agents')).items.filter(
    (a) => a.hostname === ref && a.status !== 'revoked',
  );
  if (all.length === 0) throw new CliError(`no agent on host ${JSON.stringify(ref)}`, EXIT.notFound);
  if (all.length > 1) throw usage(`${all.length} agents run on ${JSON.stringify(ref)}; use the id`);
  return all[0] as Agent;
}

/** Follow a job to its end, with a progress line on a terminal. Exit status follows the job. */
async function waitJob(api: Api, out: Out, jobId: string): Promise<Job> {
  let last = '';
  for (;;) {
    const j = await api.get<Job>(`/api/v1/jobs/${jobId}`);
    if (['succeeded', 'failed', 'cancelled', 'stalled'].includes(j.state)) {
      if (out.tty && !out.json) out.err('\r\x1b[2K');
      return j;
    }
    const p = j.progress ?? {};
    const line = `${j.type} ${j.state} ${p.phase ?? ''} dumped ${bytes(p.bytesDumped ?? 0)} stored ${bytes(p.bytesStored ?? 0)}${
      p.rateBytesPerSecond ? ` at ${bytes(p.rateBytesPerSecond)}/s` : ''
    }`;
    if (out.tty && !out.json) out.err(`\r\x1b[2K${spinner()} ${line}`);
    else if (line !== last && !out.json) out.err(`${line}\n`);
    last = line;
    await new Promise((r) => setTimeout(r, 500));
  }
}
let spin = 0;
const spinner = () => '|/-\\'[spin++ % 4];

function jobOutcome(out: Out, j: Job, human: string): number {
  show(out, j, () => {
    if (j.state === 'succeeded') out.write(`${human}\n`);
    else out.write(`${j.type} ${j.state}: ${j.error?.message ?? 'no detail'}\n`);
  });
  return j.state === 'succeeded' ? EXIT.ok : EXIT.failure;
}

/** A started job: follow it with --wait, else print its id. */
async function started(api: Api, out: Out, flags: Flags, job: { id: string }, done: (j: Job) => string) {
  if (!flags.wait) {
    show(out, job, () => out.write(`${job.id}\n`));
    return EXIT.ok;
  }
  const j = await waitJob(api, out, job.id);
  return jobOutcome(out, j, done(j));
}

// ---------------------------------------------------------------- commands

async function readPassword(env: NodeJS.ProcessEnv): Promise<string> {
  if (env.DBBACKUP_PASSWORD) return env.DBBACKUP_PASSWORD;
  if (process.stdin.isTTY) process.stderr.write('password: ');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').split('\n')[0] ?? '';
}

export async function run(argv: string[], env: NodeJS.ProcessEnv, out: Out): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw usage((err as Error).message);
  }
  const flags = parsed.values as Flags;
  const [cmd, sub, ...rest] = parsed.positionals;
  out.json = Boolean(flags.json);
  if (flags.version) {
    out.write(
      `${JSON.parse(await import('node:fs').then((fs) => fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8'))).version}\n`,
    );
    return EXIT.ok;
  }
  if (flags.help || !cmd) {
    out.write(HELP);
    return cmd || flags.help ? EXIT.ok : EXIT.usage;
  }

  const saved = await readSaved(env);
  const server = ((flags.server as string) ?? env.DBBACKUP_SERVER ?? saved.server ?? '').replace(/\/+$/, '');
  if (cmd === 'login') {
    if (!server) throw usage('login needs --server URL');
    if (flags.token) {
      const api = new Api(server, flags.token as string);
      const me = await api.get<{ name: string; role: string }>('/api/v1/auth/me');
      await writeSaved(env, { server, token: flags.token as string });
      out.write(`logged in to ${server} as ${me.name} (${me.role}) with an API token\n`);
      return EXIT.ok;
    }
    if (!flags.username) throw usage('login needs --token TOKEN or --username NAME');
    const api = new Api(server, undefined);
    const r = await api.post<{
      accessToken: string;
      refreshToken: string;
      user: { username: string; role: string };
    }>('/api/v1/auth/login', { username: flags.username, password: await readPassword(env) });
    await writeSaved(env, { server, token: r.accessToken, refreshToken: r.refreshToken });
    out.write(`logged in to ${server} as ${r.user.username} (${r.user.role})\n`);
    return EXIT.ok;
  }
  if (!server) throw usage('no server: pass --server URL, set DBBACKUP_SERVER, or run dbbackup login');
  const token = (flags.token as string) ?? env.DBBACKUP_TOKEN ?? saved.token;
  if (!token) throw usage('no credentials: pass --token, set DBBACKUP_TOKEN, or run dbbackup login');
  const refresh =
    !flags.token && !env.DBBACKUP_TOKEN && saved.refreshToken
      ? async () => {
          const r = await new Api(server, undefined)
            .post<{ accessToken: string; refreshToken: string }>('/api/v1/auth/refresh', {
              refreshToken: saved.refreshToken,
            })
            .catch(() => undefined);
          if (!r) return undefined;
          await writeSaved(env, { server, token: r.accessToken, refreshToken: r.refreshToken });
          return r.accessToken;
        }
      : undefined;
  const api = new Api(server, token, refresh);
  const need = (v: unknown, what: string) => {
    if (!v) throw usage(`${cmd}${sub ? ` ${sub}` : ''} needs ${what}`);
    return v as string;
  };

  switch (cmd) {
    case 'status': {
      const [agents, targets, alerts, jobs] = await Promise.all([
        api.get<{ items: Agent[] }>('/api/v1/agents'),
        api.get<{ items: Target[] }>('/api/v1/targets'),
        api.get<{ items: { kind: string; message: string }[] }>('/api/v1/alerts?state=firing'),
        api.get<{ items: Job[] }>('/api/v1/jobs?state=running'),
      ]);
      const byStatus: Record<string, number> = {};
      for (const a of agents.items) byStatus[a.status] = (byStatus[a.status] ?? 0) + 1;
      const health = flags.verbose
        ? await Promise.all(
            targets.items.map(async (t) => ({
              target: t.name,
              engine: t.engine,
              ...(await api.get<Record<string, unknown>>(`/api/v1/targets/${t.id}/health`)),
            })),
          )
        : undefined;
      const summary = {
        server,
        agents: byStatus,
        targets: targets.items.length,
        runningJobs: jobs.items.length,
        firingAlerts: alerts.items.length,
        ...(health ? { health } : {}),
      };
      show(out, summary, () => {
        out.write(`server   ${server}\n`);
        out.write(
          `agents   ${
            Object.entries(byStatus)
              .map(([k, v]) => `${v} ${k}`)
              .join(', ') || 'none'
          }\n`,
        );
        out.write(`targets  ${targets.items.length}\njobs     ${jobs.items.length} running\n`);
        out.write(`alerts   ${alerts.items.length} firing\n`);
        for (const a of alerts.items) out.write(`  ! ${a.kind}: ${a.message}\n`);
        if (health)
          table(out, health, ['target', 'engine', 'lastGoodBackupAt', 'rpoSeconds', 'nextExpectedRunAt']);
      });
      return alerts.items.length > 0 ? EXIT.failure : EXIT.ok;
    }
    case 'agents': {
      if (sub === 'ls' || !sub) {
        const r = await api.get<{ items: Agent[] }>('/api/v1/agents');
        show(out, r.items, () =>
          table(out, r.items as never, ['id', 'hostname', 'status', 'agentVersion', 'lastSeenAt']),
        );
        return EXIT.ok;
      }
      const a = await resolveAgent(api, rest[0]);
      if (sub === 'show') {
        const full = await api.get<Record<string, unknown>>(`/api/v1/agents/${a.id}`);
        show(out, full, () => out.write(`${JSON.stringify(full, null, 2)}\n`));
        return EXIT.ok;
      }
      if (sub === 'revoke') {
        await api.call('DELETE', `/api/v1/agents/${a.id}`);
        show(out, { id: a.id, revoked: true }, () => out.write(`revoked ${a.hostname} (${a.id})\n`));
        return EXIT.ok;
      }
      throw usage(`agents ${sub}: expected ls, show or revoke`);
    }
    case 'enroll-token': {
      if (sub !== 'create') throw usage('enroll-token: expected create');
      const labels: Record<string, string> = {};
      for (const l of (flags.label as string[] | undefined) ?? []) {
        const i = l.indexOf('=');
        if (i <= 0) throw usage(`--label: expected k=v, got ${JSON.stringify(l)}`);
        labels[l.slice(0, i)] = l.slice(i + 1);
      }
      const r = await api.post<{ token: string; expiresAt: string; installCommand: string | null }>(
        '/api/v1/enrollment-tokens',
        { labels, ...(flags.ttl ? { ttlSeconds: Number(flags.ttl) } : {}) },
      );
      show(out, r, () =>
        out.write(`${r.installCommand ?? r.token}\n(one use, valid until ${r.expiresAt})\n`),
      );
      return EXIT.ok;
    }
    case 'targets': {
      if (sub === 'ls' || !sub) {
        const q = flags.agent
          ? `/api/v1/agents/${(await resolveAgent(api, flags.agent as string)).id}/targets`
          : '/api/v1/targets';
        const r = await api.get<{ items: Target[] }>(q);
        show(out, r.items, () => table(out, r.items as never, ['id', 'name', 'engine', 'agentId']));
        return EXIT.ok;
      }
      if (sub === 'discover') {
        const a = await resolveAgent(api, rest[0]);
        const r = await api.get<{ items: Record<string, unknown>[] }>(`/api/v1/agents/${a.id}/discovered`);
        show(out, r.items, () => table(out, r.items, ['key', 'engine', 'name', 'host', 'port', 'path']));
        return EXIT.ok;
      }
      if (sub === 'add') {
        const a = await resolveAgent(api, need(flags.agent, '--agent'));
        const connection: Record<string, unknown> = {};
        for (const k of ['host', 'database', 'user', 'path'] as const) if (flags[k]) connection[k] = flags[k];
        if (flags.port) connection.port = Number(flags.port);
        // A secret declared on the agent's host (dbbackup-agent secret add NAME --allow ...).
        const secretRef = flags.secret ? { kind: 'secret', name: flags.secret } : undefined;
        const t = await api.post<Target>(`/api/v1/agents/${a.id}/targets`, {
          engine: need(flags.engine, '--engine'),
          name: need(flags.name, '--name'),
          storageId: need(flags.storage, '--storage'),
          connection,
          ...(secretRef ? { secretRef } : {}),
        });
        show(out, t, () => out.write(`${t.id}\n`));
        return EXIT.ok;
      }
      throw usage(`targets ${sub}: expected ls, add or discover`);
    }
    case 'backup': {
      const t = await resolveTarget(api, sub);
      const job = await api.post<{ id: string }>(`/api/v1/targets/${t.id}/backups`);
      return started(api, out, flags, job, (j) => {
        const r = j.result as { backupId?: string; sizeBytes?: number } | null;
        return `backup ${r?.backupId} of ${t.name}: ${bytes(r?.sizeBytes)} stored`;
      });
    }
    case 'restore': {
      const backupId = need(sub, 'a backup id');
      const conflict = (flags['on-conflict'] as string | undefined) ?? 'fail';
      if (!['fail', 'clean', 'create'].includes(conflict))
        throw usage('--on-conflict: fail, clean or create');
      const job = await api.post<{ id: string }>(`/api/v1/backups/${backupId}/restore`, {
        conflict,
        ...(flags.to ? { database: flags.to } : {}),
        ...(flags.tables ? { tables: (flags.tables as string).split(',').map((s) => s.trim()) } : {}),
      });
      return started(api, out, flags, job, () => `restored backup ${backupId}`);
    }
    case 'verify': {
      let backupId = sub;
      if (!backupId) {
        if (!flags.target || !flags.latest) throw usage('verify needs a backup id, or --target T --latest');
        const t = await resolveTarget(api, flags.target as string);
        const list = await api.get<{ items: { id: string; finishedAt: string }[] }>(
          `/api/v1/backups?target=${t.id}`,
        );
        const newest = [...list.items].sort((a, b) => (a.finishedAt < b.finishedAt ? 1 : -1))[0];
        if (!newest) throw new CliError(`target ${t.name} has no backup`, EXIT.notFound);
        backupId = newest.id;
      }
      const job = await api.post<{ id: string }>(`/api/v1/backups/${backupId}/verify`);
      return started(api, out, flags, job, () => `backup ${backupId} verified`);
    }
    case 'backups': {
      if (sub && sub !== 'ls') throw usage('backups: expected ls');
      const q = flags.target ? `?target=${(await resolveTarget(api, flags.target as string)).id}` : '';
      const r = await api.get<{ items: Record<string, unknown>[] }>(`/api/v1/backups${q}`);
      show(out, r.items, () =>
        table(
          out,
          r.items.map((b) => ({ ...b, size: bytes(b.sizeBytes as number) })),
          ['id', 'targetId', 'finishedAt', 'size', 'status'],
        ),
      );
      return EXIT.ok;
    }
    case 'schedule': {
      const t = await resolveTarget(api, rest[0] ?? (flags.target as string | undefined));
      const base = `/api/v1/targets/${t.id}/schedules`;
      if (sub === 'ls') {
        const r = await api.get<{ items: Record<string, unknown>[] }>(base);
        show(out, r.items, () => table(out, r.items, ['id', 'cron', 'timezone', 'enabled', 'nextRunAt']));
        return EXIT.ok;
      }
      if (sub === 'create') {
        const s = await api.post<{ id: string }>(base, {
          cron: need(flags.cron, '--cron'),
          ...(flags.timezone ? { timezone: flags.timezone } : {}),
        });
        show(out, s, () => out.write(`${s.id}\n`));
        return EXIT.ok;
      }
      if (sub === 'enable' || sub === 'disable') {
        const id = need(rest[1], 'a schedule id');
        const s = await api.call('PATCH', `${base}/${id}`, { enabled: sub === 'enable' });
        show(out, s, () => out.write(`schedule ${id} ${sub}d\n`));
        return EXIT.ok;
      }
      throw usage(`schedule ${sub ?? ''}: expected ls, create, enable or disable`);
    }
    case 'cleanup': {
      const t = await resolveTarget(api, sub);
      const olderThan = need(flags['older-than'], '--older-than (like 30d)');
      if (Boolean(flags['dry-run']) === Boolean(flags.confirm))
        throw usage('cleanup needs exactly one of --dry-run or --confirm');
      const r = await api.post<Record<string, unknown>>(`/api/v1/targets/${t.id}/cleanup`, {
        olderThan,
        dryRun: Boolean(flags['dry-run']),
      });
      show(out, r, () => out.write(`${JSON.stringify(r, null, 2)}\n`));
      return EXIT.ok;
    }
    case 'logs': {
      const jobId = need(sub, 'a job id');
      let after = 0;
      for (;;) {
        const r = await api.get<{ items: { id: number; at: string; level: string; message: string }[] }>(
          `/api/v1/jobs/${jobId}/logs?after=${after}`,
        );
        for (const l of r.items) {
          out.write(out.json ? `${JSON.stringify(l)}\n` : `${l.at} ${l.level.padEnd(5)} ${l.message}\n`);
          after = l.id;
        }
        if (!flags.follow) return EXIT.ok;
        const j = await api.get<Job>(`/api/v1/jobs/${jobId}`);
        if (['succeeded', 'failed', 'cancelled'].includes(j.state) && r.items.length === 0) {
          return j.state === 'succeeded' ? EXIT.ok : EXIT.failure;
        }
        await new Promise((res) => setTimeout(res, 500));
      }
    }
    case 'alerts': {
      if (sub && sub !== 'ls') throw usage('alerts: expected ls');
      const r = await api.get<{ items: Record<string, unknown>[] }>(
        `/api/v1/alerts${flags.state ? `?state=${encodeURIComponent(flags.state as string)}` : ''}`,
      );
      show(out, r.items, () => table(out, r.items, ['kind', 'state', 'firedAt', 'message']));
      return EXIT.ok;
    }
    case 'audit': {
      if (sub !== 'export') throw usage('audit: expected export');
      const format = (flags.format as string | undefined) ?? 'jsonl';
      const res = await api.raw('GET', `/api/v1/audit/export?format=${encodeURIComponent(format)}`);
      if (!res.ok) throw new ApiError(res.status, (await res.json().catch(() => ({}))) as never);
      const sink = flags.out ? createWriteStream(flags.out as string, { mode: 0o600 }) : undefined;
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        if (sink) sink.write(chunk);
        else out.write(Buffer.from(chunk).toString('utf8'));
      }
      if (sink) await new Promise((r) => sink.end(r));
      return EXIT.ok;
    }
    case 'rotate-keys': {
      const job = await api.post<{ id: string; state: string }>('/api/v1/keys/kek/rotate');
      if (!flags.wait) {
        show(out, job, () =>
          out.write(`key rotation ${job.id} started; follow with dbbackup rotate-keys --wait\n`),
        );
        return EXIT.ok;
      }
      for (;;) {
        const s = await api.get<{ id: string; state: string; done: number; total: number; error?: string }>(
          `/api/v1/keys/rotations/${job.id}`,
        );
        if (!out.json)
          out.err(`${out.tty ? '\r\x1b[2K' : ''}re-wrapped ${s.done}/${s.total}${out.tty ? '' : '\n'}`);
        if (s.state !== 'running') {
          if (out.tty && !out.json) out.err('\n');
          show(out, s, () => out.write(`key rotation ${s.state}: ${s.done}/${s.total} backups re-wrapped\n`));
          return s.state === 'succeeded' ? EXIT.ok : EXIT.failure;
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    default:
      throw usage(`unknown command ${JSON.stringify(cmd)}; see dbbackup --help`);
  }
}

const out: Out = {
  json: false,
  tty: Boolean(process.stderr.isTTY),
  write: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
};

run(process.argv.slice(2), process.env, out).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    if (err instanceof CliError) {
      if (out.json && err instanceof ApiError)
        process.stdout.write(`${JSON.stringify({ error: err.problem, status: err.status })}\n`);
      process.stderr.write(`dbbackup: ${err.message}\n`);
      if (err instanceof ApiError && err.problem.errors) {
        for (const e of err.problem.errors) process.stderr.write(`  ${e.path}: ${e.message}\n`);
      }
      process.exitCode = err.code;
      return;
    }
    process.stderr.write(`dbbackup: ${(err as Error).stack ?? err}\n`);
    process.exitCode = EXIT.failure;
  },
);
