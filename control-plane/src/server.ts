import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Logger } from '@dbbackup/logger';
import { serve } from '@hono/node-server';
import { sql } from 'kysely';
import type { Config } from './config.js';
import { ensureKek, KekSource } from './crypto/key-encryption-key.js';
import { SecretBox } from './crypto/secret-box.js';
import { createDb, type Db, json } from './db/database.js';
import { startEmbeddedPostgres } from './db/embedded-postgres.js';
import { migrate } from './db/migrations.js';
import { purgeExpiredJtis } from './gateway/agent-auth.js';
import { AgentGateway } from './gateway/agent-gateway.js';
import { createApp } from './http/app.js';
import { createApiToken } from './http/auth.js';
import { sweepStaleAgents } from './services/agent-status.js';
import { sweepMissedBackups, sweepStalledJobs } from './services/alerts.js';
import { expireCommands } from './services/command-state.js';
import { KeyRotator } from './services/key-rotation.js';
import { bindMetricsDb } from './services/metrics.js';
import { Notifier } from './services/notifications.js';
import { NotifyBus } from './services/notify-bus.js';

export interface RunningControlPlane {
  port: number;
  db: Db;
  stop(): Promise<void>;
}

/** One value the database holds sealed with the master key, if any (the KEK's private half, or storage credentials). */
async function sealedSample(db: Db): Promise<string | undefined> {
  const k = await db
    .selectFrom('keys')
    .select('private_enc')
    .where('private_enc', 'is not', null)
    .limit(1)
    .executeTakeFirst();
  if (k?.private_enc) return k.private_enc;
  const s = await db
    .selectFrom('storage_profiles')
    .select('secret_enc')
    .where('secret_enc', 'is not', null)
    .limit(1)
    .executeTakeFirst();
  return s?.secret_enc ?? undefined;
}

/** Start the control plane: database (embedded when none is configured), migrations, HTTP + agent gateway, sweepers. */
export async function startControlPlane(config: Config, log: Logger): Promise<RunningControlPlane> {
  // Parents get the usual 0755; the data directory itself is owner-only.
  await mkdir(path.dirname(config.dataDir), { recursive: true });
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  let databaseUrl = config.databaseUrl;
  let stopEmbedded: (() => Promise<void>) | undefined;
  if (!databaseUrl) {
    const pg = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPgPort, log });
    databaseUrl = pg.url;
    stopEmbedded = pg.stop;
  }
  const { db, pool } = createDb(databaseUrl);
  const migration = await migrate(db as never);
  if (migration.error) throw new Error('database migration failed', { cause: migration.error });
  if (migration.applied.length) log.info({ applied: migration.applied }, 'migrations applied');

  const clusterId = await ensureClusterId(db);
  const box = await SecretBox.load({
    masterKey: config.masterKey,
    dataDir: config.dataDir,
    sealedSample: await sealedSample(db),
  });
  await ensureKek(db, box);
  const kek = new KekSource(db);
  await bootstrapAdminToken(db, config.dataDir, log);

  const bus = new NotifyBus(databaseUrl, pool, log);
  const gateway = new AgentGateway({
    db,
    log: log.child({ component: 'gateway' }),
    audience: clusterId,
    maxAgeSeconds: config.agentTokenMaxAgeSeconds,
    clockSkewSeconds: config.clockSkewSeconds,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    box,
    kek,
  });
  bus.onSignal((s) => {
    if (s.kind === 'commands') gateway.dispatch(s.agentId);
    else if (s.kind === 'revoke') gateway.revoke(s.agentId);
  });
  await bus.start();

  bindMetricsDb(db);
  const notifier = new Notifier(db, box, log, {
    retryBaseMs: config.notifyRetryBaseMs,
    maxAttempts: config.notifyMaxAttempts,
    intervalMs: config.notifyIntervalMs,
    timeoutMs: 10_000,
  });
  notifier.start();
  const rotator = new KeyRotator(db, box, bus, log, {
    intervalMs: config.keyRotationIntervalMs,
    commandTimeoutMs: 60_000,
    retireGraceMs: config.keyRetireGraceMs,
    maxWaitMs: config.keyRotationMaxWaitMs,
  });
  rotator.start();
  const app = createApp({
    notifier,
    db,
    bus,
    log,
    clusterId,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    commandTtlSeconds: config.commandTtlSeconds,
    enrollmentTokenTtlSeconds: config.enrollmentTokenTtlSeconds,
    maxBodyBytes: config.maxBodyBytes,
    publicUrl: config.publicUrl,
    agentBundleDir: config.agentBundleDir,
    metricsToken: config.metricsToken,
    auth: {
      jwtKey: box.deriveKey('access-token v1'),
      accessTokenTtlSeconds: config.accessTokenTtlSeconds,
      refreshTokenTtlSeconds: config.refreshTokenTtlSeconds,
      loginMaxFailures: config.loginMaxFailures,
      loginLockoutSeconds: config.loginLockoutSeconds,
      loginRateLimitPerMinute: config.loginRateLimitPerMinute,
    },
    box,
    kek,
    targetTestTimeoutMs: config.targetTestTimeoutMs,
  });

  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: config.host, port: config.port }, () =>
      resolve(s as Server),
    );
    (s as Server).once('error', reject);
  });
  // Longer than a typical load balancer's idle timeout (60 s), so the balancer closes idle connections first.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  gateway.attach(server);
  const port = (server.address() as AddressInfo).port;

  let lastMissedSweep = 0;
  const sweeper = setInterval(
    () => {
      void (async () => {
        const offline = await sweepStaleAgents(db, 2 * config.heartbeatIntervalMs + 500);
        if (offline.length) log.info({ agents: offline }, 'agents marked offline (no heartbeat)');
        const expired = await expireCommands(db);
        if (expired) log.info({ expired }, 'commands expired');
        await purgeExpiredJtis(db);
        await gateway.dispatchQueued();
        const stalled = await sweepStalledJobs(db, config.jobMaxDurationMs);
        if (stalled.length) log.warn({ jobs: stalled }, 'jobs marked stalled');
        // Schedules are looked at every few seconds, not at every heartbeat sweep.
        if (Date.now() - lastMissedSweep >= 2000) {
          lastMissedSweep = Date.now();
          const missed = await sweepMissedBackups(db, config.missedBackupGraceMs);
          if (missed.fired.length) log.warn({ targets: missed.fired }, 'backup_missed alerts fired');
        }
      })().catch((err) => log.warn({ err }, 'sweep failed'));
    },
    Math.max(100, Math.floor(config.heartbeatIntervalMs / 2)),
  );

  log.info(
    { host: config.host, port, clusterId, embeddedDatabase: !config.databaseUrl },
    'control plane listening',
  );

  return {
    port,
    db,
    async stop() {
      clearInterval(sweeper);
      await notifier.stop();
      await rotator.stop();
      await gateway.close();
      await new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections?.();
      await bus.close();
      await db.destroy();
      await stopEmbedded?.();
    },
  };
}

async function ensureClusterId(db: Db): Promise<string> {
  await db
    .insertInto('settings')
    .values({ key: 'cluster_id', value: json(randomUUID()) })
    .onConflict((oc) => oc.doNothing())
    .execute();
  const row = await db
    .selectFrom('settings')
    .select('value')
    .where('key', '=', 'cluster_id')
    .executeTakeFirstOrThrow();
  return String(row.value);
}

/**
 * On first start (no admin token exists) create one, print it once and write it
 * to a 0600 file in the data directory. An advisory lock keeps two replicas
 * starting together from creating two.
 */
async function bootstrapAdminToken(db: Db, dataDir: string, log: Logger) {
  await db.connection().execute(async (conn) => {
    await sql`SELECT pg_advisory_lock(727001)`.execute(conn);
    try {
      const existing = await conn
        .selectFrom('api_tokens')
        .select('id')
        .where('role', '=', 'admin')
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      if (existing) return;
      const t = await createApiToken(conn as Db, 'initial-admin', 'admin');
      const file = path.join(dataDir, 'admin-token');
      await writeFile(file, `${t.token}\n`, { mode: 0o600 });
      await chmod(file, 0o600);
      // Printed once, on purpose and outside the JSON log (which would redact it).
      process.stdout.write(
        `\n  dbbackup: initial admin API token (shown once; also saved to ${file}):\n\n    ${t.token}\n\n`,
      );
      log.info({ file, tokenId: t.id }, 'initial admin token created');
    } finally {
      await sql`SELECT pg_advisory_unlock(727001)`.execute(conn);
    }
  });
  if (!existsSync(dataDir)) throw new Error(`data directory ${dataDir} vanished`);
}
