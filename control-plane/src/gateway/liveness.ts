import type { Logger } from '@dbbackup/logger';
import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import { markOnlineAgain } from '../services/agent-status.js';

/**
 * Heartbeats, batched: a heartbeat marks its agent seen in memory; every `flushMs` one
 * statement writes every seen agent's last_seen_at, and one more brings back online the
 * ones the sweeper had marked offline (with their history row and notification). With
 * nothing else changed a heartbeat costs the database nothing of its own.
 */
export class Liveness {
  #seen = new Map<string, Date>();
  #timer: NodeJS.Timeout;
  #flushing: Promise<void> = Promise.resolve();

  constructor(
    readonly db: Db,
    readonly log: Logger,
    readonly flushMs: number,
    /** Whether the agent still has its socket here (a heartbeat from before a disconnect brings nothing back). */
    readonly connected: (agentId: string) => boolean,
  ) {
    this.#timer = setInterval(() => void this.flush(), flushMs);
    this.#timer.unref();
  }

  seen(agentId: string, at = new Date()) {
    this.#seen.set(agentId, at);
  }

  /** Its socket closed: a heartbeat not yet written must not bring it back online. */
  forget(agentId: string) {
    this.#seen.delete(agentId);
  }

  /** Write what was seen since the last flush (one flush at a time). */
  flush(): Promise<void> {
    this.#flushing = this.#flushing
      .then(() => this.#write())
      .catch((err) => this.log.warn({ err }, 'liveness flush failed'));
    return this.#flushing;
  }

  async #write() {
    if (this.#seen.size === 0) return;
    const batch = this.#seen;
    this.#seen = new Map();
    const ids = [...batch.keys()];
    const ats = ids.map((id) => (batch.get(id) as Date).toISOString());
    await sql`
      UPDATE agents SET last_seen_at = v.at
        FROM (SELECT unnest(${ids}::uuid[]) AS id, unnest(${ats}::timestamptz[]) AS at) v
       WHERE agents.id = v.id AND (agents.last_seen_at IS NULL OR agents.last_seen_at < v.at)`.execute(
      this.db,
    );
    // The sweeper may have marked some offline while their heartbeats were late; only those
    // still connected come back (one that disconnected since is offline for good reason).
    await markOnlineAgain(this.db, ids.filter(this.connected), 'heartbeat resumed');
  }

  async close() {
    clearInterval(this.#timer);
    await this.flush();
  }
}
