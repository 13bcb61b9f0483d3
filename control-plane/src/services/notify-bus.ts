import type { Logger } from '@dbbackup/logger';
import pg from 'pg';
import { z } from 'zod';

/**
 * Cross-replica signals over Postgres LISTEN/NOTIFY. A replica that creates a
 * command or revokes an agent publishes; the replica holding that agent's
 * socket acts. With one replica the same path is taken, so it is always exercised.
 */
export const Signal = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('commands'), agentId: z.string() }),
  z.object({ kind: z.literal('revoke'), agentId: z.string() }),
]);
export type Signal = z.infer<typeof Signal>;

const CHANNEL = 'dbbackup_signals';

export class NotifyBus {
  #client: pg.Client | undefined;
  #closed = false;
  #handler: (s: Signal) => void = () => {};
  readonly #url: string;
  readonly #log: Logger;
  readonly #pool: pg.Pool;

  constructor(url: string, pool: pg.Pool, log: Logger) {
    this.#url = url;
    this.#pool = pool;
    this.#log = log;
  }

  onSignal(handler: (s: Signal) => void) {
    this.#handler = handler;
  }

  async start(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#url });
    client.on('notification', (msg) => {
      try {
        const s = Signal.safeParse(JSON.parse(msg.payload ?? ''));
        if (s.success) this.#handler(s.data);
      } catch (err) {
        this.#log.warn({ err }, 'ignoring malformed signal');
      }
    });
    client.on('error', (err) => {
      this.#log.warn({ err }, 'notify connection lost; reconnecting');
      this.#client = undefined;
      if (!this.#closed) setTimeout(() => void this.start().catch(() => {}), 1000).unref();
    });
    await client.connect();
    await client.query(`LISTEN ${CHANNEL}`);
    this.#client = client;
  }

  async publish(s: Signal): Promise<void> {
    await this.#pool.query('SELECT pg_notify($1, $2)', [CHANNEL, JSON.stringify(s)]);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#client?.end().catch(() => {});
  }
}
