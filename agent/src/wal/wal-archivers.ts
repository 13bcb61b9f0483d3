import type { Logger } from '@dbbackup/logger';
import type { AgentConfig, AgentEventBody } from '@dbbackup/proto';
import type { AgentStore } from '../store/agent-store.js';
import { WalArchiver } from './wal-archiver.js';

/**
 * The WAL archivers of every physical target in the agent's configuration: started from
 * the stored configuration at start (archiving goes on while the control plane is away),
 * restarted when a target's settings change, stopped when it leaves the configuration.
 * An archiver that cannot start (the server down, a prerequisite missing) is retried.
 */
export class WalArchivers {
  readonly #running = new Map<string, WalArchiver>();
  #config: AgentConfig | undefined;
  #retry: NodeJS.Timeout | undefined;
  #stopped = false;
  #chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly o: {
      agentId: string;
      stateDir: string;
      store: AgentStore;
      log: Logger;
      emit: (e: AgentEventBody) => Promise<void>;
      spoolLimitBytes: number;
      retryMs?: number;
    },
  ) {}

  async start() {
    const raw = await this.o.store.getMeta('config');
    if (raw) await this.update(JSON.parse(raw) as AgentConfig);
  }

  statuses() {
    return [...this.#running.values()].map((a) => a.status());
  }

  /** Apply a configuration; updates run one after another, in the order given. */
  update(config: AgentConfig): Promise<void> {
    this.#config = config;
    this.#chain = this.#chain
      .then(() => this.#apply(config))
      .catch((err) => {
        this.o.log.warn({ err }, 'WAL archivers were not updated');
      });
    return this.#chain;
  }

  async #apply(config: AgentConfig) {
    if (this.#stopped) return;
    const wanted = new Map<string, WalArchiver>();
    for (const t of config.targets) {
      if (!t.wal) continue;
      const a = new WalArchiver({
        agentId: this.o.agentId,
        stateDir: this.o.stateDir,
        target: t.target,
        storage: t.wal.storage,
        naming: config.naming,
        kek: config.kek,
        store: this.o.store,
        emit: this.o.emit,
        log: (level, m) => this.o.log[level]({ targetId: t.target.id }, m),
        spoolLimitBytes: this.o.spoolLimitBytes,
      });
      wanted.set(t.target.id, a);
    }
    for (const [id, a] of this.#running) {
      const next = wanted.get(id);
      if (next && next.key === a.key) {
        wanted.delete(id);
        continue;
      }
      await a.stop();
      this.#running.delete(id);
    }
    let failed = false;
    for (const [id, a] of wanted) {
      try {
        await a.start();
        this.#running.set(id, a);
      } catch (err) {
        await a.stop().catch(() => {});
        failed = true;
        this.o.log.warn({ err, targetId: id }, 'WAL archiving could not start; retrying');
        await this.o
          .emit({ ...a.status(), error: `WAL archiving could not start: ${(err as Error).message}` })
          .catch(() => {});
      }
    }
    if (failed && !this.#stopped && !this.#retry) {
      this.#retry = setTimeout(() => {
        this.#retry = undefined;
        if (this.#config && !this.#stopped) void this.update(this.#config);
      }, this.o.retryMs ?? 30_000);
      this.#retry.unref();
    }
  }

  async stop() {
    this.#stopped = true;
    if (this.#retry) clearTimeout(this.#retry);
    await this.#chain;
    await Promise.all([...this.#running.values()].map((a) => a.stop()));
    this.#running.clear();
  }
}
