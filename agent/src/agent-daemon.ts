import { type KeyObject, sign } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '@dbbackup/logger';
import { redactText } from '@dbbackup/logger';
import {
  AgentConfig,
  type DumpTool,
  destinationOf,
  type ServerPayload,
  StorageSpec,
  type TargetSpec,
} from '@dbbackup/proto';
import { AgentError } from './agent-error.js';
import { runCommand } from './commands/command-handlers.js';
import { DiscoveryCache, discoveryConfig } from './discovery.js';
import { discoverTools, hostFacts } from './host-facts.js';
import { loadEncryptionKey, loadIdentity } from './identity.js';
import type { JobContext } from './jobs/job-context.js';
import { removeUncommitted, sweepOrphans } from './jobs/orphan-sweep.js';
import { AgentLink } from './link/agent-link.js';
import { Scheduler } from './schedule/scheduler.js';
import { HostSecrets, setHostSecrets } from './secrets/host-secrets.js';
import { openStore } from './storage/object-store.js';
import { AgentStore } from './store/agent-store.js';
import { AGENT_VERSION } from './version.js';

export interface DaemonOptions {
  stateDir: string;
  /** Environment for discovery settings (DBBACKUP_DISCOVER_*). */
  env?: NodeJS.ProcessEnv;
  /** How often the databases on this host are looked for again. */
  discoveryIntervalMs?: number;
  /** A scheduled run missed while the agent was down is run at start if it is at most this old. */
  scheduleGraceMs?: number;
  log: Logger;
  caFile?: string | undefined;
  backoffBaseMs: number;
  backoffCapMs: number;
  stableAfterMs: number;
  /** Fault injection for tests: die with SIGKILL at this point. */
  crashPoint?: string | undefined;
  /** The host's secrets file (DBBACKUP_SECRETS_FILE). */
  secretsFile?: string | undefined;
  /** How old a data object with no meta.json must be before the sweep removes it. */
  orphanGraceMs?: number | undefined;
  /** Fault injection for tests: `job-events-full` fails every job log/progress write with SQLITE_FULL. */
  fault?: string | undefined;
}

const TOOLS_TTL_MS = 10 * 60_000;
/** Commands that run long; everything else runs in the quick lane. */
const JOB_KINDS = ['backup', 'verify', 'restore', 'retention.apply'];

/**
 * The agent daemon: the link to the control plane, the inbox that records each
 * command before it runs, and a worker that runs queued commands one at a time
 * and records their outcome in the outbox in the same transaction.
 */
export class AgentDaemon {
  readonly #o: DaemonOptions;
  #store!: AgentStore;
  #link!: AgentLink;
  #stopping = false;
  #wakers = new Set<() => void>();
  #worker: Promise<void> | undefined;
  #tools: { at: number; list: DumpTool[] } | undefined;
  #toolsPending: Promise<DumpTool[]> | undefined;
  #revoked: ((reason: string) => void) | undefined;
  #agentId = '';
  readonly #jobFaults = new Map<string, Error>();
  #signingKey: KeyObject | undefined;
  readonly #discovery: DiscoveryCache;
  #scheduler!: Scheduler;
  #daily: NodeJS.Timeout | undefined;

  constructor(o: DaemonOptions) {
    this.#o = o;
    this.#discovery = new DiscoveryCache(discoveryConfig(o.env ?? {}), o.discoveryIntervalMs ?? 300_000);
  }

  /** Resolves when the control plane revokes this agent. */
  readonly revoked = new Promise<string>((r) => {
    this.#revoked = r;
  });

  async start() {
    const { log } = this.#o;
    const identity = await loadIdentity(this.#o.stateDir);
    this.#store = await AgentStore.open(this.#o.stateDir);
    const interrupted = await this.#store.failInterrupted();
    if (interrupted.length)
      log.warn({ commands: interrupted }, 'commands interrupted by a restart were marked failed');
    await this.#store.pruneInbox();
    this.#agentId = identity.agentId;
    this.#signingKey = identity.signingKey;
    setHostSecrets(
      new HostSecrets({
        file: this.#o.secretsFile ?? '/etc/dbbackup/secrets.json',
        env: this.#o.env ?? process.env,
        stateDir: this.#o.stateDir,
        legacyBindings: await this.#legacyBindings(),
      }),
    );
    await this.#abortUnfinishedUploads();
    const ca = this.#o.caFile ? await readFile(this.#o.caFile) : undefined;
    this.#link = new AgentLink({
      identity,
      store: this.#store,
      log: log.child({ component: 'link' }),
      agentVersion: AGENT_VERSION,
      ca,
      backoffBaseMs: this.#o.backoffBaseMs,
      backoffCapMs: this.#o.backoffCapMs,
      stableAfterMs: this.#o.stableAfterMs,
      crashDuringReplay: this.#o.crashPoint === 'during-replay',
      heartbeatIntervalMs: 15_000,
      collectFacts: async () => {
        const counts = await this.#store.inboxCounts();
        const discovered = this.#discovery.current();
        return hostFacts({
          discovered,
          agentVersion: AGENT_VERSION,
          stateDir: this.#o.stateDir,
          tools: await this.tools(),
          queueDepth: counts.queued + counts.running,
          outboxDepth: await this.#store.outboxDepth(),
        });
      },
    });
    this.#scheduler = new Scheduler({
      store: this.#store,
      log: log.child({ component: 'scheduler' }),
      isConnected: () => this.#link.state === 'ready',
      wake: () => this.#wakeAll(),
      graceMs: this.#o.scheduleGraceMs ?? 3_600_000,
    });
    this.#link.on(
      'command',
      (c) => void this.#onCommand(c).catch((err) => log.error({ err }, 'failed to record command')),
    );
    this.#link.on('revoked', (reason) => this.#revoked?.(reason));
    log.info(
      { agentId: identity.agentId, server: identity.server, version: AGENT_VERSION },
      'agent starting',
    );
    await this.#scheduler.start();
    this.#daily = setInterval(
      () => void this.#dailyRetention().catch((err) => log.warn({ err }, 'daily retention did not run')),
      86_400_000,
    );
    this.#daily.unref();
    this.#link.start();
    this.#worker = Promise.all([
      this.#work({ kinds: JOB_KINDS, include: true }),
      this.#work({ kinds: JOB_KINDS, include: false }),
    ]).then(() => undefined);
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

  async #onCommand(c: ServerPayload<'command'>) {
    const { log } = this.#o;
    if (this.#stopping) return; // not recorded, not acknowledged: it will be redelivered
    if (this.#o.crashPoint === 'before-record') process.kill(process.pid, 'SIGKILL');
    const outcome = await this.#store.recordCommand({
      commandId: c.commandId,
      kind: c.command.kind,
      payload: c.command,
      expiresAt: c.expiresAt,
    });
    if (outcome === 'new' && this.#o.crashPoint === 'after-record') process.kill(process.pid, 'SIGKILL');
    this.#link.ack(c.commandId);
    if (outcome === 'repeat') {
      log.info({ commandId: c.commandId }, 'repeated command re-acknowledged, not re-run');
      return;
    }
    log.info({ commandId: c.commandId, kind: c.command.kind }, 'command recorded');
    this.#wakeAll();
  }

  #wakeAll() {
    const ws = [...this.#wakers];
    this.#wakers.clear();
    for (const w of ws) w();
  }

  /**
   * Two lanes, each one command at a time: long jobs (backup, verify, restore) in
   * one, quick commands (ping, probe, target.test) in the other, so that testing a
   * new target does not wait behind an hour-long backup.
   */
  async #work(lane: { kinds: string[]; include: boolean }) {
    const { log } = this.#o;
    while (!this.#stopping) {
      const next = await this.#store.nextQueued(lane);
      if (!next) {
        await new Promise<void>((r) => {
          this.#wakers.add(r);
          setTimeout(r, 5000).unref();
        });
        continue;
      }
      if (!(await this.#store.startCommand(next.command_id))) continue;
      void this.#link.flush();
      const clog = log.child({ commandId: next.command_id, kind: next.kind });
      try {
        if (new Date(next.expires_at).getTime() < Date.now())
          throw new AgentError('expired', 'command expired before it could run');
        if (this.#o.crashPoint === 'while-running') process.kill(process.pid, 'SIGKILL');
        const result = await runCommand(next.kind, JSON.parse(next.payload), {
          tools: () => this.tools(),
          job: (jobId) => this.#jobContext(jobId),
          applyConfig: (config) => this.#scheduler.update(config),
          applyRetention: async (c) => {
            const { applyRetention } = await import('./jobs/retention.js');
            return applyRetention({
              target: c.target,
              storage: c.storage,
              naming: c.naming,
              policy: c.policy,
              log: (level, m) => clog[level](m),
              onDeleted: async (d) => {
                await this.#store.appendEvent({ type: 'backup.deleted', ...d });
                void this.#link.flush();
              },
            });
          },
        });
        if (next.kind === 'backup') {
          await this.#retentionAfterBackup(JSON.parse(next.payload));
          await this.#sweepAfterBackup(JSON.parse(next.payload));
        }
        await this.#record(() => this.#store.finishCommand(next.command_id, { ok: true, result }), clog);
        clog.info('command succeeded');
        this.#jobFaults.delete((JSON.parse(next.payload) as { jobId?: string }).jobId ?? '');
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        const codeStr =
          typeof code === 'string' && /^[a-z][a-z0-9-]{0,63}$/.test(code)
            ? code
            : err instanceof AgentError
              ? err.code
              : 'error';
        const message = err instanceof Error ? err.message : String(err);
        const payload = JSON.parse(next.payload) as { jobId?: string };
        if (payload.jobId) this.#jobFaults.delete(payload.jobId);
        if (payload.jobId)
          await this.#store
            .appendEvent({
              type: 'job.log',
              jobId: payload.jobId,
              level: 'error',
              message: redactText(message).slice(0, 8000),
            })
            .catch(() => {});
        await this.#record(
          () =>
            this.#store.finishCommand(next.command_id, {
              ok: false,
              code: codeStr,
              message: redactText(message),
            }),
          clog,
        );
        clog.warn({ code: codeStr, message }, 'command failed');
      }
      void this.#link.flush();
    }
  }

  /**
   * Record a command's outcome, retrying while the state directory cannot take the
   * write (a full disk): the agent stays up and reports it as soon as it can.
   */
  async #record(write: () => Promise<unknown>, clog: { error: (o: object, m: string) => void }) {
    for (let attempt = 1; ; attempt++) {
      try {
        await write();
        return;
      } catch (err) {
        if (this.#stopping) throw err;
        if (attempt === 1)
          clog.error({ err: (err as Error).message }, 'cannot record the outcome yet; retrying');
        await new Promise((r) => setTimeout(r, Math.min(30_000, 500 * attempt)));
      }
    }
  }

  #jobContext(jobId: string): JobContext {
    const store = this.#store;
    const flush = () => void this.#link.flush();
    const log = this.#o.log.child({ jobId });
    // A job's log and progress are recorded in the background; a failure to record them
    // (the state directory's disk is full) is kept for the job, which fails before it commits.
    const faulty = this.#o.fault === 'job-events-full';
    const record = (body: Parameters<AgentStore['appendEvent']>[0]) => {
      (faulty ? Promise.reject(sqliteFull()) : store.appendEvent(body)).then(flush, (err: Error) => {
        if (!this.#jobFaults.has(jobId)) log.error({ err: err.message }, 'could not record job events');
        this.#jobFaults.set(jobId, err);
      });
    };
    return {
      agentId: this.#agentId,
      encryptionKey: () => loadEncryptionKey(this.#o.stateDir),
      sign: (data) => sign(null, data, this.#signingKey!).toString('base64url'),
      log: (level, message) => {
        log[level]({ job: true }, message);
        record({ type: 'job.log', jobId, level, message: redactText(message).slice(0, 8000) });
      },
      progress: (phase, bytesIn, bytesOut) => {
        record({ type: 'job.progress', jobId, phase, bytesIn, bytesOut });
      },
      storageFault: () => this.#jobFaults.get(jobId),
      crashPoint: this.#o.crashPoint,
      recordUpload: (storage, key, uploadId) => store.recordUpload(jobId, storage, key, uploadId),
      clearUpload: () => store.clearUpload(jobId),
    };
  }

  /**
   * After a good backup, the target's retention policy (if any) runs against what the
   * storage holds. Its failure is logged on the backup's job and never fails the backup.
   */
  async #retentionAfterBackup(c: {
    jobId: string;
    target: TargetSpec;
    storage: StorageSpec;
    naming: { env: string; agentName: string };
  }) {
    const policy = c.target.options.retention;
    if (!policy) return;
    const ctx = this.#jobContext(c.jobId);
    await this.#runRetention(c.target, c.storage, c.naming, (level, m) => ctx.log(level, m));
  }

  /**
   * After a good backup, data objects of that target with no meta.json (an upload that
   * completed for a job interrupted before its commit marker) and older than the grace
   * period are removed, each reported on the job's log and as an agent event.
   */
  async #sweepAfterBackup(c: {
    jobId: string;
    target: TargetSpec;
    storage: StorageSpec;
    naming: { env: string; agentName: string };
  }) {
    const ctx = this.#jobContext(c.jobId);
    try {
      const inFlight = new Set((await this.#store.unfinishedUploads()).map((u) => u.object_key));
      const removed = await sweepOrphans({ ...c, graceMs: this.#o.orphanGraceMs ?? 6 * 3_600_000, inFlight });
      for (const r of removed) {
        const m = `removed ${r.key} (${r.size} bytes, ${Math.round(r.ageMs / 60_000)} min old): a data object with no meta.json is not a backup`;
        ctx.log('warn', m);
        await this.#store.appendEvent({ type: 'log', level: 'warn', message: m }).catch(() => {});
      }
    } catch (err) {
      this.#o.log.warn({ err, targetId: c.target.id }, 'orphan sweep did not run to the end');
    }
  }

  async #runRetention(
    target: TargetSpec,
    storage: StorageSpec,
    naming: { env: string; agentName: string },
    log: (level: 'info' | 'warn' | 'error', m: string) => void,
  ) {
    const policy = target.options.retention;
    if (!policy) return;
    try {
      const { applyRetention } = await import('./jobs/retention.js');
      await applyRetention({
        target,
        storage,
        naming,
        policy,
        log,
        onDeleted: async (d) => {
          await this.#store.appendEvent({ type: 'backup.deleted', ...d });
          void this.#link.flush();
        },
      });
    } catch (err) {
      this.#o.log.warn({ err, targetId: target.id }, 'retention did not run to the end');
    }
  }

  /** Once a day, every target's retention on every storage its schedules use. */
  async #dailyRetention() {
    const raw = await this.#store.getMeta('config');
    if (!raw) return;
    const config = AgentConfig.parse(JSON.parse(raw));
    for (const { target, schedules } of config.targets) {
      const storages = new Map(schedules.map((s) => [s.storage.id, s.storage]));
      for (const storage of storages.values())
        await this.#runRetention(target, storage, config.naming, (level, m) =>
          this.#o.log[level]({ targetId: target.id }, m),
        );
    }
  }

  /**
   * Secret references from before 0.1.2 (a file path or an environment variable the
   * control plane named) keep working for the targets that had them when this version
   * first started, bound to the destination each had then; recorded once, in the state
   * directory (metadata, never a secret).
   */
  async #legacyBindings(): Promise<Record<string, string | null>> {
    const file = path.join(this.#o.stateDir, 'legacy-secret-bindings.json');
    try {
      return JSON.parse(await readFile(file, 'utf8')) as Record<string, string | null>;
    } catch {}
    const raw = await this.#store.getMeta('config');
    const bindings: Record<string, string | null> = {};
    if (raw) {
      const parsed = AgentConfig.safeParse(JSON.parse(raw));
      for (const { target } of parsed.success ? parsed.data.targets : [])
        if (target.secretRef.kind === 'env' || target.secretRef.kind === 'passfile')
          bindings[target.id] = destinationOf(target) ?? null;
    }
    await writeFile(file, `${JSON.stringify(bindings, null, 2)}\n`, { mode: 0o600 });
    if (Object.keys(bindings).length)
      this.#o.log.warn(
        { targets: Object.keys(bindings) },
        'bound the secret references of existing targets to their current destinations; declare named secrets to change them',
      );
    return bindings;
  }

  /** After a crash: abort the uploads of jobs that were interrupted, so no multipart upload is left behind. */
  async #abortUnfinishedUploads() {
    for (const u of await this.#store.unfinishedUploads()) {
      try {
        const storage = StorageSpec.parse(JSON.parse(u.storage));
        const n = await (await openStore(storage)).cleanupUnfinished(u.object_key);
        // The upload may have completed before the crash, the commit marker not: the object goes.
        const removed = await removeUncommitted(storage, u.object_key);
        this.#o.log.warn(
          { jobId: u.job_id, key: u.object_key, aborted: n, removedObject: removed },
          'cleaned up after an interrupted job: unfinished upload aborted, uncommitted object removed',
        );
        if (removed)
          await this.#store.appendEvent({
            type: 'log',
            level: 'warn',
            message: `removed ${u.object_key}: its job was interrupted before the backup was committed`,
          });
        await this.#store.clearUpload(u.job_id);
      } catch (err) {
        this.#o.log.error(
          { err, jobId: u.job_id },
          'could not abort an unfinished upload; will retry at next start',
        );
      }
    }
  }

  /** Stop taking work, let the running command finish (bounded), flush the outbox, close with 1001. */
  async stop(graceMs = 20_000) {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#scheduler?.stop();
    if (this.#daily) clearInterval(this.#daily);
    this.#wakeAll();
    if (this.#worker) {
      await Promise.race([this.#worker, new Promise((r) => setTimeout(r, graceMs).unref())]);
    }
    await this.#link.stop();
    await this.#store.close();
  }
}

/** The error better-sqlite3 throws when the disk (or the database's page limit) is full. */
function sqliteFull(): Error {
  return Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
}
