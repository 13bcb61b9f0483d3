import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Logger } from '@dbbackup/logger';
import { serve } from '@hono/node-server';
import { bootstrapAdminToken, ensureClusterId, sealedSample } from './bootstrap.js';
import type { Config } from './config.js';
import { ensureKek, KekSource } from './crypto/key-encryption-key.js';
import { SecretBox } from './crypto/secret-box.js';
import { createDb, type Db } from './db/database.js';
import { startEmbeddedPostgres } from './db/embedded-postgres.js';
import { migrate } from './db/migrations.js';
import { AgentGateway } from './gateway/agent-gateway.js';
import { type AppDeps, createApp } from './http/app.js';
import { registerDrillMetrics } from './services/drill-metrics.js';
import { KeyRotator } from './services/key-rotation.js';
import { bindMetricsDb } from './services/metrics.js';
import { Notifier } from './services/notifications.js';
import { NotifyBus } from './services/notify-bus.js';
import { registerWalMetrics } from './services/wal-metrics.js';
import { startSweeper } from './sweeper.js';

export interface RunningControlPlane {
  port: number;
  db: Db;
  stop(): Promise<void>;
}

/** The database (embedded when none is configured), migrated to the current schema. */
async function openDatabase(config: Config, log: Logger) {
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
  const { db, pool } = createDb(databaseUrl, config.databasePoolSize);
  const migration = await migrate(db as never);
  if (migration.error) throw new Error('database migration failed', { cause: migration.error });
  if (migration.applied.length) log.info({ applied: migration.applied }, 'migrations applied');
  return { db, pool, databaseUrl, stopEmbedded };
}

/** The notification sender and the key rotator, each on its own interval. */
function startWorkers(db: Db, box: SecretBox, bus: NotifyBus, config: Config, log: Logger) {
  bindMetricsDb(db);
  registerDrillMetrics();
  registerWalMetrics();
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
  return { notifier, rotator };
}

async function listen(app: ReturnType<typeof createApp>, config: Config): Promise<Server> {
  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: config.host, port: config.port }, () =>
      resolve(s as Server),
    );
    (s as Server).once('error', reject);
  });
  // Longer than a typical load balancer's idle timeout (60 s), so the balancer closes idle connections first.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  return server;
}

/** What the REST app is built from: the running parts and the settings it needs. */
function appDeps(
  config: Config,
  parts: Pick<AppDeps, 'db' | 'box' | 'kek' | 'bus' | 'log' | 'clusterId' | 'notifier'>,
): AppDeps {
  return {
    ...parts,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    commandTtlSeconds: config.commandTtlSeconds,
    enrollmentTokenTtlSeconds: config.enrollmentTokenTtlSeconds,
    targetTestTimeoutMs: config.targetTestTimeoutMs,
    maxBodyBytes: config.maxBodyBytes,
    publicUrl: config.publicUrl,
    agentBundleDir: config.agentBundleDir,
    metricsToken: config.metricsToken,
    auth: {
      jwtKey: parts.box.deriveKey('access-token v1'),
      accessTokenTtlSeconds: config.accessTokenTtlSeconds,
      refreshTokenTtlSeconds: config.refreshTokenTtlSeconds,
      loginMaxFailures: config.loginMaxFailures,
      loginLockoutSeconds: config.loginLockoutSeconds,
      loginRateLimitPerMinute: config.loginRateLimitPerMinute,
      secureCookies: config.publicUrl?.startsWith('https:') ?? false,
    },
  };
}

/** Start the control plane: database, migrations, keys, HTTP + agent gateway, workers and sweeper. */
export async function startControlPlane(config: Config, log: Logger): Promise<RunningControlPlane> {
  const { db, pool, databaseUrl, stopEmbedded } = await openDatabase(config, log);
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
    box,
    kek,
    log: log.child({ component: 'gateway' }),
    audience: clusterId,
    maxAgeSeconds: config.agentTokenMaxAgeSeconds,
    clockSkewSeconds: config.clockSkewSeconds,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    maxHandshakes: config.maxAgentHandshakes,
    admissionQueue: config.agentAdmissionQueue,
  });
  bus.onSignal((s) => {
    if (s.kind === 'commands') gateway.dispatch(s.agentId);
    else if (s.kind === 'revoke') gateway.revoke(s.agentId);
  });
  await bus.start();
  const { notifier, rotator } = startWorkers(db, box, bus, config, log);
  const app = createApp(appDeps(config, { db, box, kek, bus, log, clusterId, notifier }));
  const server = await listen(app, config);
  gateway.attach(server);
  const port = (server.address() as AddressInfo).port;
  const stopSweeper = startSweeper(db, config, log, {
    dispatchQueued: () => gateway.dispatchQueued(),
    flushLiveness: () => gateway.flushLiveness(),
    box,
    bus,
  });
  log.info(
    { host: config.host, port, clusterId, embeddedDatabase: !config.databaseUrl },
    'control plane listening',
  );

  return {
    port,
    db,
    async stop() {
      const t0 = Date.now();
      const took: Record<string, number> = {};
      const step = async (name: string, fn: () => Promise<unknown> | unknown) => {
        const t = Date.now();
        await fn();
        took[name] = Date.now() - t;
      };
      stopSweeper();
      await step('workers', () => Promise.all([notifier.stop(), rotator.stop()]));
      await step('agents', () => gateway.close());
      await step('http', async () => {
        const closed = new Promise<void>((r) => server.close(() => r()));
        server.closeIdleConnections?.();
        await closed;
      });
      await step('database', async () => {
        await bus.close();
        await db.destroy();
        await stopEmbedded?.();
      });
      log.info({ ms: Date.now() - t0, steps: took }, 'control plane stopped');
    },
  };
}
