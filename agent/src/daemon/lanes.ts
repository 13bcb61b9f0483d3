import type { Logger } from '@dbbackup/logger';
import { redactText } from '@dbbackup/logger';
import { AgentError } from '../agent-error.js';
import { type HandlerContext, runCommand } from '../commands/command-handlers.js';
import type { AgentStore } from '../store/agent-store.js';
import type { JobContexts } from './job-contexts.js';

/** Commands that run long; everything else runs in the quick lane. */
export const JOB_KINDS = [
  'backup',
  'verify',
  'restore',
  'drill',
  'pitr.restore',
  'pitr.drill',
  'wal.verify',
  'retention.apply',
  'backup.delete',
];

type QueuedCommand = NonNullable<Awaited<ReturnType<AgentStore['nextQueued']>>>;

export interface LaneDeps {
  store: AgentStore;
  log: Logger;
  jobs: JobContexts;
  /** What command handlers may use, for one command (its log for retention's messages). */
  handlers: (clog: Logger) => HandlerContext;
  /** Work after a good backup (retention, orphan sweep), before its success is recorded; it never throws. */
  afterBackup: (payload: unknown) => Promise<void>;
  flush: () => void;
  crashPoint: string | undefined;
}

/**
 * Two lanes, each one command at a time: long jobs (backup, verify, restore) in one,
 * quick commands (ping, probe, target.test) in the other, so that testing a new target
 * does not wait behind an hour-long backup. A command's outcome is recorded in the
 * outbox with its state change; a recording that fails (a full disk) is retried.
 */
export class Lanes {
  #stopping = false;
  readonly #wakers = new Set<() => void>();
  #running: Promise<void> | undefined;
  constructor(readonly d: LaneDeps) {}

  start() {
    this.#running = Promise.all([
      this.#lane({ kinds: JOB_KINDS, include: true }),
      this.#lane({ kinds: JOB_KINDS, include: false }),
    ]).then(() => undefined);
  }

  /** A command was queued: the idle lanes look again. */
  wake() {
    const ws = [...this.#wakers];
    this.#wakers.clear();
    for (const w of ws) w();
  }

  /** Take no new command; resolves when the running ones finished or `graceMs` passed. */
  async stop(graceMs: number) {
    this.#stopping = true;
    this.wake();
    if (this.#running)
      await Promise.race([this.#running, new Promise((r) => setTimeout(r, graceMs).unref())]);
  }

  async #lane(lane: { kinds: string[]; include: boolean }) {
    while (!this.#stopping) {
      const next = await this.d.store.nextQueued(lane);
      if (!next) {
        await new Promise<void>((r) => {
          this.#wakers.add(r);
          setTimeout(r, 5000).unref();
        });
        continue;
      }
      if (!(await this.d.store.startCommand(next.command_id))) continue;
      this.d.flush();
      await this.#run(next);
      this.d.flush();
    }
  }

  async #run(next: QueuedCommand) {
    const { store } = this.d;
    const clog = this.d.log.child({ commandId: next.command_id, kind: next.kind });
    const payload = JSON.parse(next.payload) as { jobId?: string };
    try {
      if (new Date(next.expires_at).getTime() < Date.now())
        throw new AgentError('expired', 'command expired before it could run');
      if (this.d.crashPoint === 'while-running') process.kill(process.pid, 'SIGKILL');
      const result = await runCommand(next.kind, payload, this.d.handlers(clog));
      // Part of the backup's job (its log shows what they removed); neither can fail it.
      if (next.kind === 'backup') await this.d.afterBackup(payload);
      await this.#record(() => store.finishCommand(next.command_id, { ok: true, result }), clog);
      clog.info('command succeeded');
      this.d.jobs.forget(payload.jobId);
    } catch (err) {
      await this.#failed(next, payload.jobId, err, clog);
    }
  }

  async #failed(next: QueuedCommand, jobId: string | undefined, err: unknown, clog: Logger) {
    const { store } = this.d;
    const code = (err as { code?: unknown }).code;
    const codeStr =
      typeof code === 'string' && /^[a-z][a-z0-9-]{0,63}$/.test(code)
        ? code
        : err instanceof AgentError
          ? err.code
          : 'error';
    const message = err instanceof Error ? err.message : String(err);
    this.d.jobs.forget(jobId);
    if (jobId)
      await store
        .appendEvent({ type: 'job.log', jobId, level: 'error', message: redactText(message).slice(0, 8000) })
        .catch(() => {});
    await this.#record(
      () => store.finishCommand(next.command_id, { ok: false, code: codeStr, message: redactText(message) }),
      clog,
    );
    clog.warn({ code: codeStr, message }, 'command failed');
  }

  /**
   * Record a command's outcome, retrying while the state directory cannot take the
   * write (a full disk): the agent stays up and reports it as soon as it can.
   */
  async #record(write: () => Promise<unknown>, clog: Logger) {
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
}
