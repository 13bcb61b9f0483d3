import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ApiError, CliError, EXIT, usage } from './api.js';
import { alerts, audit, rawApi, rotateKeys } from './commands/admin.js';
import { drill, report } from './commands/drills.js';
import { agents, enrollToken, status, targets } from './commands/fleet.js';
import { backup, backups, logs, restore, verify } from './commands/jobs.js';
import { pitrRestore, recoveryWindow, verifyChain } from './commands/pitr.js';
import { cleanup, schedule } from './commands/schedules.js';
import type { Ctx } from './context.js';
import type { Flags, Out } from './output.js';
import { connect, login, serverOf } from './session.js';

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
  restore BACKUP [--to DB] [--target T] [--tables a,b] [--on-conflict fail|clean|create] [--wait]
  restore TARGET --data-dir DIR (--to-time T | --to-lsn L | --latest) [--port P] [--wait]
                                          a physical PostgreSQL target to a point in time, into a new data directory
  recovery-window TARGET                  a physical target's restorable span and WAL gaps
  verify-chain TARGET [--wait]            every archived WAL file is in storage and authenticates
  verify BACKUP | --target TARGET --latest [--wait]
  drill TARGET [--wait]                   restore the newest good backup into a scratch copy, check it, measure it
  report recoverability                   every target: last good backup, last drill, measured RTO and RPO
  backups ls [--target TARGET]
  schedule ls TARGET | create TARGET --cron EXPR [--timezone TZ] | enable TARGET ID | disable TARGET ID
  cleanup TARGET --older-than 30d (--dry-run | --confirm)
  logs JOB [--follow]
  alerts ls [--state firing|resolved]
  audit export [--format jsonl|csv] [--out FILE]
  rotate-keys [--wait]
  api METHOD PATH [--data JSON]           any API call below /api/v1 (what the dashboard shows where no command fits)

Every read takes --json. TARGET is a target's id or its name; AGENT an id or a host name.
Exit codes: 0 ok, 1 failure (a job failed, a conflict, the server unreachable),
2 usage (bad arguments, or the server refused the input), 3 not found, 4 not allowed.
`;

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
  'data-dir': { type: 'string' },
  'to-time': { type: 'string' },
  'to-lsn': { type: 'string' },
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
  data: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;

const COMMANDS: Record<string, (c: Ctx) => Promise<number>> = {
  status,
  agents,
  'enroll-token': enrollToken,
  targets,
  backup,
  restore: (c) => (c.flags['data-dir'] ? pitrRestore(c) : restore(c)),
  'recovery-window': recoveryWindow,
  'verify-chain': verifyChain,
  verify,
  drill,
  report,
  backups,
  schedule,
  cleanup,
  logs,
  alerts,
  audit,
  'rotate-keys': rotateKeys,
  api: rawApi,
};

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
    out.write(`${JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version}\n`);
    return EXIT.ok;
  }
  if (flags.help || !cmd) {
    out.write(HELP);
    return cmd || flags.help ? EXIT.ok : EXIT.usage;
  }
  const server = await serverOf(flags, env);
  if (cmd === 'login') {
    await login(server, flags, env, out);
    return EXIT.ok;
  }
  const command = COMMANDS[cmd];
  if (!command) throw usage(`unknown command ${JSON.stringify(cmd)}; see dbbackup --help`);
  const api = await connect(server, flags, env);
  const need = (v: unknown, what: string) => {
    if (!v) throw usage(`${cmd}${sub ? ` ${sub}` : ''} needs ${what}`);
    return v as string;
  };
  return command({ api, out, flags, sub, rest, server, need });
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
