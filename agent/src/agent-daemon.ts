import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Logger } from '@dbbackup/logger';
import type { Command, DumpTool, StorageSpec, TargetSpec } from '@dbbackup/proto';
import type { HandlerContext } from './commands/command-handlers.js';
import type { AgentConfig } from './config.js';
import { intake } from './daemon/intake.js';
import { JobContexts } from './daemon/job-contexts.js';
import { Lanes } from './daemon/lanes.js';
import { RetentionRunner } from './daemon/retention-runner.js';
import { recoverScratch, recoverUploads } from './daemon/upload-recovery.js';
import { DiscoveryCache } from './discovery.js';
import { discoverTools, hostFacts } from './host-facts.js';
import { loadIdentity } from './identity.js';
import { sweepOrphans } from './jobs/orphan-sweep.js';
import { AgentLink } from './link/agent-link.js';
import { Scheduler } from './schedule/scheduler.js';
import { HostSecrets, setHostSecrets } from './secrets/host-secrets.js';
import { legacyBindings } from './secrets/legacy-bindings.js';
import { AgentStore } from './store/agent-store.js';
import { AGENT_VERSION } from './version.js';
import { WalArchivers } from './wal/wal-archivers.js';

const TOOLS_TTL_MS = 10 * 60_000;

type BackupPayload = {
  jobId: string;
  target: TargetSpec;
  storage: StorageSpec;
  naming: { env: string; agentName: string };
};

/**
 * The agent daemon: the link to the control plane, the intake that records each command
 * before it is acknowledged, the lanes that run recorded commands and record their outcome
 * in the outbox in the same transaction, the scheduler, and daily retention.
 */
export class AgentDaemon {
  readonly #c: AgentConfig;
  readonly #log: Logger;
  readonly #env: NodeJS.ProcessEnv;
  #store!: AgentStore;
  #link!: AgentLink;
  #lanes!: Lanes;
  #jobs!: JobContexts;
  #retention!: RetentionRunner;
  #scheduler!: Scheduler;
  #wal!: WalArchivers;
  #stopping = false;
  #tools: { at: number; list: DumpTool[] } | undefined;
  #toolsPending: Promise<DumpTool[]> | undefined;
  #revoked: ((reason: string) => void) | undefined;
  readonly #discovery: DiscoveryCache;
  #daily: NodeJS.Timeout | undefined;

  /** `env`: where declared secrets (DBBACKUP_SECRET_<NAME>) are read from. */
  constructor(config: AgentConfig, log: Logger, env: NodeJS.ProcessEnv) {
    this.#c = config;
    this.#log = log;
    this.#env = env;
    this.#discovery = new DiscoveryCache(config.discovery, config.discoveryIntervalMs);
  }

  /** Resolves when the control plane revokes this agent. */
  readonly revoked = new Promise<string>((r) => {
    this.#revoked = r;
  });

  async start() {
    const log = this.#log;
    const identity = await loadIdentity(this.#c.stateDir);
    this.#store = await AgentStore.open(this.#c.stateDir);
    const interrupted = await this.#store.failInterrupted();
    if (interrupted.length)
      log.warn({ commands: interrupted }, 'commands interrupted by a restart were marked failed');
    await this.#store.pruneInbox();
    setHostSecrets(
      new HostSecrets({
        file: this.#c.secretsFile,
        env: this.#env,
        stateDir: this.#c.stateDir,
        legacyBindings: await legacyBindings(this.#c.stateDir, this.#store, log),
      }),
    );
    await recoverUploads(this.#store, log);
    await recoverScratch(this.#store, log);
    this.#link = await this.#createLink(identity);
    const flush = () => void this.#link.flush();
    this.#jobs = new JobContexts({
      agentId: identity.agentId,
      stateDir: this.#c.stateDir,
      signingKey: identity.signingKey as KeyObject,
      store: this.#store,
      log,
      flush,
      crashPoint: this.#c.testCrashPoint,
      fault: this.#c.testFault,
      freeBytes: this.#c.testFreeBytes,
    });
    this.#retention = new RetentionRunner(this.#store, log, flush);
    this.#lanes = new Lanes({
      store: this.#store,
      log,
      jobs: this.#jobs,
      handlers: (clog) => this.#handlers(clog),
      afterBackup: (p) => this.#afterBackup(p as BackupPayload),
      flush,
      crashPoint: this.#c.testCrashPoint,
    });
    this.#scheduler = new Scheduler({
      store: this.#store,
      log: log.child({ component: 'scheduler' }),
      isConnected: () => this.#link.state === 'ready',
      wake: () => this.#lanes.wake(),
      graceMs: this.#c.scheduleGraceMs,
    });
    this.#wal = this.#createWal(identity.agentId, flush);
    this.#link.on(
      'command',
      (c) =>
        void (async () => {
          if (this.#stopping) return; // not recorded, not acknowledged: it will be redelivered
          const outcome = await intake(this.#store, c, this.#c.testCrashPoint, log);
          this.#link.ack(c.commandId);
          if (outcome === 'new') this.#lanes.wake();
        })().catch((err) => log.error({ err }, 'failed to record command')),
    );
    this.#link.on('revoked', (reason) => this.#revoked?.(reason));
    log.info(
      { agentId: identity.agentId, server: identity.server, version: AGENT_VERSION },
      'agent starting',
    );
    await this.#scheduler.start();
    void this.#wal.start().catch((err) => log.warn({ err }, 'WAL archiving did not start'));
    this.#daily = setInterval(
      () => void this.#retention.daily().catch((err) => log.warn({ err }, 'daily retention did not run')),
      86_400_000,
    );
    this.#daily.unref();
    this.#link.start();
    this.#lanes.start();
  }

  /** Continuous WAL archiving of the physical targets in the configuration. */
  #createWal(agentId: string, flush: () => void) {
    return new WalArchivers({
      agentId,
      stateDir: this.#c.stateDir,
      store: this.#store,
      log: this.#log.child({ component: 'wal' }),
      emit: async (e) => {
        await this.#store.appendEvent(e);
        flush();
      },
      spoolLimitBytes: this.#c.walSpoolMaxBytes,
    });
  }

  async #createLink(identity: Awaited<ReturnType<typeof loadIdentity>>) {
    const ca = this.#c.caFile ? await readFile(this.#c.caFile) : undefined;
    return new AgentLink({
      identity,
      store: this.#store,
      log: this.#log.child({ component: 'link' }),
      agentVersion: AGENT_VERSION,
      ca,
      backoffBaseMs: this.#c.backoffBaseMs,
      backoffCapMs: this.#c.backoffCapMs,
      stableAfterMs: this.#c.stableAfterMs,
      crashDuringReplay: this.#c.testCrashPoint === 'during-replay',
      heartbeatIntervalMs: 15_000,
      collectFacts: async () => {
        const counts = await this.#store.inboxCounts();
        return hostFacts({
          discovered: this.#discovery.current(),
          agentVersion: AGENT_VERSION,
          stateDir: this.#c.stateDir,
          tools: this.#knownTools(),
          queueDepth: counts.queued + counts.running,
          outboxDepth: await this.#store.outboxDepth(),
        });
      },
    });
  }

  /**
   * The tools found so far, at once: a heartbeat never waits for tool discovery (asking every
   * tool its version can take seconds on a loaded host, longer than a heartbeat may be late).
   * A discovery that is due starts in the background and the next heartbeat carries it.
   */
  #knownTools(): DumpTool[] {
    void this.tools().catch((err) => this.#log.warn({ err }, 'tool discovery failed'));
    return this.#tools?.list ?? [];
  }

  /** Dump tools on this host, rediscovered every ten minutes. */
  async tools(): Promise<DumpTool[]> {
    if (this.#tools && Date.now() - this.#tools.at < TOOLS_TTL_MS) return this.#tools.list;
    this.#toolsPending ??= discoverTools().then((list) => {
      this.#tools = { at: Date.now(), list };
      this.#toolsPending = undefined;
      return list;
    });
    return this.#toolsPending;
  }

  #handlers(clog: Logger): HandlerContext {
    return {
      tools: () => this.tools(),
      job: (jobId) => this.#jobs.for(jobId),
      applyConfig: async (config) => {
        const applied = await this.#scheduler.update(config);
        // Archivers start in the background: a database that is down does not hold up the sync.
        if (applied.applied === config.version) void this.#wal.update(config);
        return applied;
      },
      applyRetention: async (c: Extract<Command, { kind: 'retention.apply' | 'backup.delete' }>) => {
        const { applyRetention } = await import('./jobs/retention.js');
        return applyRetention({
          target: c.target,
          storage: c.storage,
          naming: c.naming,
          policy: c.kind === 'retention.apply' ? c.policy : {},
          ...(c.kind === 'backup.delete' ? { only: { backupId: c.backupId, reason: c.reason } } : {}),
          ...(await this.#retention.drillVerdicts(c.target.id)),
          log: (level, m) => clog[level](m),
          onDeleted: async (d) => {
            await this.#store.appendEvent({ type: 'backup.deleted', ...d });
            void this.#link.flush();
          },
          onWalPruned: async (e) => {
            await this.#store.appendEvent(e);
            void this.#link.flush();
          },
        });
      },
    };
  }

  /**
   * After a good backup: the target's retention policy (if any) against what the storage
   * holds, then the orphan sweep: data objects of that target with no meta.json (an upload
   * that completed for a job interrupted before its commit marker), older than the grace
   * period, are removed, each reported on the job's log and as an agent event.
   */
  async #afterBackup(c: BackupPayload) {
    const ctx = this.#jobs.for(c.jobId);
    if (c.target.options.retention)
      await this.#retention.run(c.target, c.storage, c.naming, (level, m) => ctx.log(level, m));
    try {
      const inFlight = new Set((await this.#store.unfinishedUploads()).map((u) => u.object_key));
      const removed = await sweepOrphans({ ...c, graceMs: this.#c.orphanGraceMs, inFlight });
      for (const r of removed) {
        const m = `removed ${r.key} (${r.size} bytes, ${Math.round(r.ageMs / 60_000)} min old): a data object with no meta.json is not a backup`;
        ctx.log('warn', m);
        await this.#store.appendEvent({ type: 'log', level: 'warn', message: m }).catch(() => {});
      }
    } catch (err) {
      this.#log.warn({ err, targetId: c.target.id }, 'orphan sweep did not run to the end');
    }
  }

  /** Stop taking work, let the running command finish (bounded), flush the outbox, close with 1001. */
  async stop(graceMs = 20_000) {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#scheduler?.stop();
    if (this.#daily) clearInterval(this.#daily);
    await this.#wal?.stop();
    await this.#lanes?.stop(graceMs);
    await this.#link.stop();
    await this.#store.close();
  }
}
