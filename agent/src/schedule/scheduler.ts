import { randomUUID } from 'node:crypto';
import type { Logger } from '@dbbackup/logger';
import type { AgentConfig, AgentSchedule } from '@dbbackup/proto';
import type { Cron } from 'croner';
import type { AgentStore, ScheduledPayload } from '../store/agent-store.js';

/**
 * croner resolves a named time zone through ICU (Date#toLocaleString), which maps
 * several MB of time-zone and locale data into the agent for as long as it runs;
 * UTC needs none of it, so UTC schedules run on a fixed zero offset instead.
 */
export function zoneOptions(timezone: string): { timezone: string } | { utcOffset: 0 } {
  return /^(Etc\/)?(UTC|UCT|GMT|Zulu|Universal)$|^(Etc\/)?GMT[+-]0$/i.test(timezone)
    ? { utcOffset: 0 }
    : { timezone };
}

/** croner is loaded once there is a schedule to keep: an agent without one does not carry it at idle. */
let cronClass: typeof Cron | undefined;
async function loadCron(): Promise<typeof Cron> {
  cronClass ??= (await import('croner')).Cron;
  return cronClass;
}

/**
 * The agent's own clock (invariant 4): every enabled schedule of its last
 * configuration runs here, whether or not the control plane is reachable. A
 * fire queues a backup in the inbox; the jobs lane runs it like any other and
 * its events wait in the outbox until the control plane is back.
 *
 * A schedule missed while the agent itself was down runs once at start if its
 * most recent missed fire is within the grace window, never once per missed tick.
 */
export class Scheduler {
  #crons: Cron[] = [];
  #config: AgentConfig | undefined;

  constructor(
    private readonly o: {
      store: AgentStore;
      log: Logger;
      isConnected: () => boolean;
      wake: () => void;
      graceMs: number;
    },
  ) {}

  get version(): number {
    return this.#config?.version ?? 0;
  }

  /** The stored configuration, at start: schedules resume, a missed run within the grace window is caught up. */
  async start(): Promise<void> {
    const raw = await this.o.store.getMeta('config');
    if (raw) await this.apply(JSON.parse(raw) as AgentConfig, { catchUp: true });
  }

  /** A configuration from the control plane; an older one than held is ignored. */
  async update(config: AgentConfig): Promise<{ applied: number; schedules: number }> {
    if (config.version < this.version) return { applied: this.version, schedules: this.#crons.length };
    await this.o.store.setMeta('config', JSON.stringify(config));
    await this.apply(config, { catchUp: false });
    return { applied: config.version, schedules: this.#crons.length };
  }

  async apply(config: AgentConfig, { catchUp }: { catchUp: boolean }) {
    this.stop();
    this.#config = config;
    const now = Date.now();
    for (const { target, schedules } of config.targets) {
      for (const s of schedules) {
        if (!s.enabled) continue;
        const CronClass = await loadCron();
        const lastKey = `sched_last:${s.id}`;
        const last = await this.o.store.getMeta(lastKey);
        if (!last) await this.o.store.setMeta(lastKey, new Date(now).toISOString());
        else if (catchUp) {
          // Was there a tick since the last fire and within the grace window? Then run once.
          const cron = new CronClass(s.cron, { ...zoneOptions(s.timezone), paused: true });
          const recent = cron.nextRun(new Date(Math.max(Date.parse(last), now - this.o.graceMs)));
          if (recent && recent.getTime() <= now) {
            this.o.log.info(
              { scheduleId: s.id, missed: recent.toISOString() },
              'a scheduled backup was missed while the agent was down: running it once now',
            );
            await this.#fire(target, s, true);
          } else {
            const first = cron.nextRun(new Date(last));
            if (first && first.getTime() <= now)
              this.o.log.warn(
                { scheduleId: s.id, missed: first.toISOString(), graceMs: this.o.graceMs },
                'a scheduled backup was missed while the agent was down, longer ago than the grace window: not run',
              );
          }
        }
        this.#crons.push(
          new CronClass(s.cron, { ...zoneOptions(s.timezone), protect: true }, () => {
            void this.#fire(target, s, false).catch((err) =>
              this.o.log.error({ err, scheduleId: s.id }, 'could not queue a scheduled backup'),
            );
          }),
        );
      }
    }
    this.o.log.info({ version: config.version, schedules: this.#crons.length }, 'schedules loaded');
  }

  async #fire(target: AgentConfig['targets'][number]['target'], s: AgentSchedule, catchUp: boolean) {
    const config = this.#config;
    if (!config) return;
    await this.o.store.setMeta(`sched_last:${s.id}`, new Date().toISOString());
    const payload: ScheduledPayload = {
      kind: 'backup',
      jobId: randomUUID(),
      backupId: randomUUID(),
      target: s.compression
        ? { ...target, options: { ...target.options, compression: s.compression } }
        : target,
      storage: s.storage,
      kek: config.kek,
      naming: config.naming,
      scheduleId: s.id,
      disconnected: !this.o.isConnected(),
      catchUp,
    };
    const queued = await this.o.store.queueScheduled(payload);
    if (queued) {
      this.o.log.info(
        { scheduleId: s.id, targetId: target.id, jobId: payload.jobId, disconnected: payload.disconnected },
        'scheduled backup queued',
      );
      this.o.wake();
    } else
      this.o.log.warn(
        { scheduleId: s.id, targetId: target.id },
        'scheduled backup skipped: a backup of this target is still queued or running',
      );
  }

  stop() {
    for (const c of this.#crons) c.stop();
    this.#crons = [];
  }
}
