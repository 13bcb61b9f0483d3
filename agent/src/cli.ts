import { chmod, mkdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { createLogger, type Logger } from '@dbbackup/logger';
import { AgentDaemon } from './agent-daemon.js';
import { type AgentConfig, type Flags, loadAgentConfig, opt, setAgentConfig, UsageError } from './config.js';
import { HttpError, postJson } from './http-client.js';
import { createKeys, isEnrolled, readEnrollment, saveEnrollment } from './identity.js';
import { AgentStore } from './store/agent-store.js';
import { AGENT_VERSION } from './version.js';

export { UsageError } from './config.js';

const USAGE = `dbbackup-agent ${AGENT_VERSION}

Usage:
  dbbackup-agent enroll --server URL --token TOKEN [--label k=v ...] [--force]
  dbbackup-agent run
  dbbackup-agent status
  dbbackup-agent secret add NAME --allow DEST[,DEST] [--from-env VAR | --from-file PATH]   (else the password on stdin)
                         declare a secret targets may name, bound to where it may be sent: a unix socket path or host:port
  dbbackup-agent decrypt --key KEK.json --meta FILE.meta.json --in FILE [--out DUMP]   (no control plane needed)
                         [--legacy-zero-key]  for a backup an agent before 0.1.1 sealed under an all-zero key
  dbbackup-agent --version

Options (each also an environment variable):
  --server URL           DBBACKUP_SERVER           control plane URL (http[s]://host:port)
  --token TOKEN          DBBACKUP_ENROLLMENT_TOKEN one-time enrolment token
  --state-dir DIR        DBBACKUP_STATE_DIR        default /var/lib/dbbackup-agent
  --label k=v            DBBACKUP_LABELS           labels, comma separated in the env var
  --hostname NAME        DBBACKUP_HOSTNAME         default: this host's name
  --ca-file FILE         DBBACKUP_CA_FILE          PEM bundle of a private CA
  --log-level LEVEL      DBBACKUP_LOG_LEVEL        default info
  --backoff-base-ms N    DBBACKUP_BACKOFF_BASE_MS  first reconnect delay ceiling, default 1000
  --backoff-cap-ms N     DBBACKUP_BACKOFF_CAP_MS   largest reconnect delay, default 60000
  --stable-after-ms N    DBBACKUP_STABLE_AFTER_MS  uptime after which backoff resets, default 30000
  --discovery-interval-ms N  DBBACKUP_DISCOVERY_INTERVAL_MS  how often local databases are looked for, default 300000
  --schedule-grace-ms N  DBBACKUP_SCHEDULE_GRACE_MS  a run missed while the agent was down runs once at start if at most this old, default 3600000
  --secrets-file FILE    DBBACKUP_SECRETS_FILE     declared secrets, default /etc/dbbackup/secrets.json (0600; never in the state directory)
  --orphan-grace-ms N    DBBACKUP_ORPHAN_GRACE_MS    a data object with no meta.json older than this is removed after a backup of its target, default 21600000
  --wal-spool-max-bytes N  DBBACKUP_WAL_SPOOL_MAX_BYTES  completed WAL a physical target's spool may hold before receiving pauses, default 10737418240
                         DBBACKUP_RESTORE_DIRS     where a point-in-time restore may create a data directory, default /var/lib/postgresql:/srv:/tmp
                         DBBACKUP_DISCOVERY=off, DBBACKUP_DISCOVER_PG_SOCKET_DIRS, DBBACKUP_DISCOVER_MYSQL_SOCKETS,
                         DBBACKUP_DISCOVER_REDIS (host:port,...), DBBACKUP_DISCOVER_SQLITE_PATHS: what discovery looks at
                         DBBACKUP_ALLOWED_COMMANDS  commands (one per line) a Redis restore may run to start the server
Proxies: HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY are honoured.
`;

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      server: { type: 'string' },
      token: { type: 'string' },
      'state-dir': { type: 'string' },
      label: { type: 'string', multiple: true },
      hostname: { type: 'string' },
      'ca-file': { type: 'string' },
      'log-level': { type: 'string' },
      'backoff-base-ms': { type: 'string' },
      'backoff-cap-ms': { type: 'string' },
      'stable-after-ms': { type: 'string' },
      'discovery-interval-ms': { type: 'string' },
      'schedule-grace-ms': { type: 'string' },
      'orphan-grace-ms': { type: 'string' },
      'wal-spool-max-bytes': { type: 'string' },
      'secrets-file': { type: 'string' },
      allow: { type: 'string' },
      'from-env': { type: 'string' },
      'from-file': { type: 'string' },
      force: { type: 'boolean' },
      key: { type: 'string' },
      meta: { type: 'string' },
      in: { type: 'string' },
      out: { type: 'string' },
      'legacy-zero-key': { type: 'boolean' },
      version: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parse(argv);
  const flags = values as Flags;
  if (flags.version) {
    process.stdout.write(`${AGENT_VERSION}\n`);
    return 0;
  }
  const cmd = positionals[0];
  if (flags.help || !cmd) {
    process.stdout.write(USAGE);
    return cmd || flags.help ? 0 : 2;
  }
  const config = loadAgentConfig(flags, env);
  setAgentConfig(config);
  const log = createLogger({ name: 'agent', level: config.logLevel });
  switch (cmd) {
    case 'enroll':
      return enroll(config, flags, log);
    case 'run':
      return run(config, env, log);
    case 'secret':
      return secret(config, flags, env, positionals);
    case 'status':
      return status(config);
    case 'decrypt':
      return decrypt(flags);
    default:
      throw new UsageError(`unknown command ${JSON.stringify(cmd)}; see dbbackup-agent --help`);
  }
}

async function enroll(config: AgentConfig, flags: Flags, log: Logger): Promise<number> {
  const { stateDir, server, enrollmentToken: token } = config;
  if (!server) throw new UsageError('enroll needs --server URL (or DBBACKUP_SERVER)');
  if (!/^https?:\/\//i.test(server))
    throw new UsageError(
      `--server / DBBACKUP_SERVER: expected http(s)://host[:port], got ${JSON.stringify(server)}`,
    );
  if (!token) throw new UsageError('enroll needs --token TOKEN (or DBBACKUP_ENROLLMENT_TOKEN)');
  if (isEnrolled(stateDir) && !flags.force) {
    const e = await readEnrollment(stateDir);
    throw new UsageError(
      `already enrolled as ${e.agentId} with ${e.server}; pass --force to enrol again with new keys`,
    );
  }
  const ca = config.caFile ? await readFile(config.caFile) : undefined;
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await chmod(stateDir, 0o700);
  const keys = await createKeys(stateDir);
  const base = server.replace(/\/+$/, '');
  try {
    const res = await postJson<{ agentId: string; audience: string }>(
      `${base}/api/v1/agents/enroll`,
      {
        token,
        hostname: config.hostname ?? os.hostname(),
        agentVersion: AGENT_VERSION,
        labels: config.labels,
        signingKey: keys.signingPublic,
        encryptionKey: keys.encryptionPublic,
      },
      ca ? { ca } : {},
    );
    await saveEnrollment(stateDir, {
      agentId: res.agentId,
      server: base,
      audience: res.audience,
      enrolledAt: new Date().toISOString(),
    });
    log.info({ agentId: res.agentId, server: base }, 'enrolled');
    process.stdout.write(`${JSON.stringify({ agentId: res.agentId })}\n`);
    return 0;
  } catch (err) {
    if (err instanceof HttpError) {
      log.error({ status: err.status, detail: err.problem?.detail }, 'enrolment refused');
      process.stderr.write(`enrolment refused: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

async function run(config: AgentConfig, env: NodeJS.ProcessEnv, log: Logger): Promise<number> {
  const daemon = new AgentDaemon(config, log, env);
  await daemon.start();
  const code = await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'stopping: finishing current work and flushing the outbox');
      daemon.stop().then(
        () => resolve(0),
        (err) => {
          log.error({ err }, 'error while stopping');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    // Every expected failure is handled where it happens; one that is not is logged and
    // ends the process cleanly (systemd starts it again), never silently.
    process.on('unhandledRejection', (reason) => {
      log.fatal({ err: reason }, 'unexpected rejection; stopping');
      stop('unhandledRejection');
      setTimeout(() => process.exit(1), 5000).unref();
    });
    void daemon.revoked.then(async () => {
      await daemon.stop(1000).catch(() => {});
      resolve(3);
    });
  });
  log.info({ code }, 'agent stopped');
  return code;
}

async function secret(config: AgentConfig, flags: Flags, env: NodeJS.ProcessEnv, positionals: string[]) {
  const { stateDir } = config;
  // dbbackup-agent secret add NAME --allow DEST[,DEST] [--from-env VAR | --from-file PATH] (else stdin)
  if (positionals[1] !== 'add' || !positionals[2]) {
    process.stderr.write(
      'usage: dbbackup-agent secret add NAME --allow DEST[,DEST] [--from-env VAR | --from-file PATH]\n',
    );
    return 2;
  }
  const { addSecret } = await import('./secrets/secret-file.js');
  const file = config.secretsFile;
  try {
    const r = await addSecret({
      file,
      stateDir,
      name: positionals[2],
      allow: (opt(flags, 'allow', env) ?? '')
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
      fromEnv: opt(flags, 'from-env', env),
      fromFile: opt(flags, 'from-file', env),
      stdin: process.stdin,
    });
    process.stdout.write(
      `secret ${r.name} ${r.replaced ? 'replaced' : 'added'} in ${file}, bound to ${r.allow.join(', ')}\n`,
    );
    return 0;
  } catch (err) {
    process.stderr.write(`dbbackup-agent: ${(err as Error).message}\n`);
    return 2;
  }
}

async function status({ stateDir }: AgentConfig): Promise<number> {
  const e = await readEnrollment(stateDir);
  const store = await AgentStore.open(stateDir);
  const status = {
    agentId: e.agentId,
    server: e.server,
    enrolledAt: e.enrolledAt,
    version: AGENT_VERSION,
    lastConnectedAt: (await store.getMeta('last_connected_at')) ?? null,
    eventsAckedUpTo: await store.eventsAckedUpTo(),
    outboxDepth: await store.outboxDepth(),
    commands: await store.inboxCounts(),
  };
  await store.close();
  process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
  return 0;
}

async function decrypt(flags: Flags): Promise<number> {
  const keyFile = flags.key as string | undefined;
  const metaFile = flags.meta as string | undefined;
  const inFile = flags.in as string | undefined;
  if (!keyFile || !metaFile || !inFile) throw new UsageError('decrypt needs --key, --meta and --in');
  const { decryptBackup } = await import('./decrypt-command.js');
  const legacyZeroKey = flags['legacy-zero-key'] === true;
  if (legacyZeroKey)
    process.stderr.write(
      'warning: decrypting with the all-zero key of agents before 0.1.1; the segments prove order and completeness, not who wrote them\n',
    );
  const r = await decryptBackup({
    keyFile,
    metaFile,
    inFile,
    out: (flags.out as string | undefined) ?? process.stdout,
    legacyZeroKey,
  });
  process.stderr.write(
    `decrypted ${r.bytesIn} bytes, ${r.segments} segments authenticated, SHA-256 matches\n`,
  );
  return 0;
}
