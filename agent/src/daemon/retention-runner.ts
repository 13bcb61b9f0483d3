import type { Logger } from '@dbbackup/logger';
import { type StorageSpec, type TargetSpec, AgentConfig as WireConfig } from '@dbbackup/proto';
import type { AgentStore } from '../store/agent-store.js';

type Naming = { env: string; agentName: string };
type LogFn = (level: 'info' | 'warn' | 'error', m: string) => void;

/**
 * Retention as the agent runs it on its own: after a target's good backup, and once a
 * day for every target on every storage its schedules use. Each deletion becomes a
 * `backup.deleted` event; a failure is logged and never fails a backup.
 */
export class RetentionRunner {
  constructor(
    readonly store: AgentStore,
    readonly log: Logger,
    readonly flush: () => void,
  ) {}

  /** What the target's drills say (unproven backups, the one to keep), from the configuration the control plane sent. */
  async drillVerdicts(targetId: string): Promise<{ unproven: Set<string>; keep: Set<string> }> {
    const raw = await this.store.getMeta('config');
    const parsed = raw ? WireConfig.safeParse(JSON.parse(raw)) : undefined;
    const entry = parsed?.success ? parsed.data.targets.find((t) => t.target.id === targetId) : undefined;
    return { unproven: new Set(entry?.unproven ?? []), keep: new Set(entry?.keep ?? []) };
  }

  async run(target: TargetSpec, storage: StorageSpec, naming: Naming, log: LogFn) {
    const policy = target.options.retention;
    if (!policy) return;
    try {
      const { applyRetention } = await import('../jobs/retention.js');
      await applyRetention({
        target,
        storage,
        naming,
        policy,
        ...(await this.drillVerdicts(target.id)),
        log,
        onDeleted: async (d) => {
          await this.store.appendEvent({ type: 'backup.deleted', ...d });
          this.flush();
        },
        onWalPruned: async (e) => {
          await this.store.appendEvent(e);
          this.flush();
        },
      });
    } catch (err) {
      this.log.warn({ err, targetId: target.id }, 'retention did not run to the end');
    }
  }

  /** Every target's retention on every storage its schedules use (the daily run). */
  async daily() {
    const raw = await this.store.getMeta('config');
    if (!raw) return;
    const config = WireConfig.parse(JSON.parse(raw));
    for (const { target, schedules } of config.targets) {
      const storages = new Map(schedules.map((s) => [s.storage.id, s.storage]));
      for (const storage of storages.values())
        await this.run(target, storage, config.naming, (level, m) =>
          this.log[level]({ targetId: target.id }, m),
        );
    }
  }
}
