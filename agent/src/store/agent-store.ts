import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AgentEvent, AgentEventBody, Command } from '@dbbackup/proto';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, type Selectable, SqliteDialect, sql, type Transaction } from 'kysely';
import { type InboxState, type InboxTable, migrations, type StoreSchema } from './store-schema.js';

export type { InboxState } from './store-schema.js';

export type InboxRow = Selectable<InboxTable>;

/** A scheduled backup: the backup command the agent builds for itself, and how it came about. */
export type ScheduledPayload = Extract<Command, { kind: 'backup' }> & {
  scheduleId: string;
  disconnected: boolean;
  catchUp: boolean;
};
type Tx = Transaction<StoreSchema>;

/**
 * The SQLite addon shipped beside the bundle (agent/native/, written by build.mjs):
 * the release bundle has no node_modules, so better-sqlite3 is told where it is.
 * Running from the TypeScript sources it is absent and the package finds its own.
 */
const BUNDLED_ADDON = fileURLToPath(new URL('../native/better_sqlite3.node', import.meta.url));

/**
 * The agent's local SQLite store: the inbox (every command id it has accepted,
 * which doubles as its job queue), the outbox of events not yet acknowledged by
 * the control plane, and small key/value state. WAL mode; survives kill -9.
 */
export class AgentStore {
  readonly db: Kysely<StoreSchema>;
  readonly #sqlite: SQLite.Database;

  private constructor(file: string) {
    this.#sqlite = new SQLite(file, existsSync(BUNDLED_ADDON) ? { nativeBinding: BUNDLED_ADDON } : {});
    this.#sqlite.pragma('journal_mode = WAL');
    this.#sqlite.pragma('synchronous = FULL');
    this.#sqlite.pragma('busy_timeout = 5000');
    this.db = new Kysely<StoreSchema>({ dialect: new SqliteDialect({ database: this.#sqlite }) });
  }

  static async open(stateDir: string): Promise<AgentStore> {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const store = new AgentStore(path.join(stateDir, 'agent.db'));
    const migrator = new Migrator({ db: store.db, provider: { getMigrations: async () => migrations } });
    // Kysely takes no lock on SQLite: a second process opening the store at the same
    // moment (`dbbackup-agent status` while the agent starts) can lose the race to
    // create the migration tables. The loser retries and finds the work done.
    for (let attempt = 1; ; attempt++) {
      const { error } = await migrator.migrateToLatest();
      if (!error) return store;
      if (attempt >= 10) {
        await store.close();
        throw new Error('agent store migration failed', { cause: error });
      }
      await new Promise((r) => setTimeout(r, 50 * attempt));
    }
  }

  async close() {
    await this.db.destroy();
  }

  // --- meta -----------------------------------------------------------------

  async getMeta(key: string): Promise<string | undefined> {
    const r = await this.db.selectFrom('meta').select('value').where('key', '=', key).executeTakeFirst();
    return r?.value;
  }

  async setMeta(key: string, value: string, tx: Kysely<StoreSchema> | Tx = this.db) {
    await tx
      .insertInto('meta')
      .values({ key, value })
      .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
      .execute();
  }

  /** Every meta entry whose key starts with `prefix`. */
  async metaWithPrefix(prefix: string): Promise<{ key: string; value: string }[]> {
    return this.db
      .selectFrom('meta')
      .select(['key', 'value'])
      .where('key', '>=', prefix)
      .where('key', '<', `${prefix}\uffff`)
      .execute();
  }

  async deleteMeta(key: string) {
    await this.db.deleteFrom('meta').where('key', '=', key).execute();
  }

  // --- inbox ----------------------------------------------------------------

  /**
   * Record a command id before anything acts on it. Returns 'new' the first time
   * and 'repeat' for a redelivery, which the caller only re-acknowledges.
   */
  async recordCommand(c: {
    commandId: string;
    kind: string;
    payload: unknown;
    expiresAt: string;
  }): Promise<'new' | 'repeat'> {
    const r = await this.db
      .insertInto('inbox')
      .values({
        command_id: c.commandId,
        kind: c.kind,
        payload: JSON.stringify(c.payload),
        expires_at: c.expiresAt,
        state: 'queued',
        received_at: new Date().toISOString(),
        finished_at: null,
      })
      .onConflict((oc) => oc.column('command_id').doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0) > 0 ? 'new' : 'repeat';
  }

  /** The oldest queued command, optionally only of these kinds or only of other kinds. */
  async nextQueued(lane?: { kinds: string[]; include: boolean }): Promise<InboxRow | undefined> {
    let q = this.db.selectFrom('inbox').selectAll().where('state', '=', 'queued');
    if (lane) q = q.where('kind', lane.include ? 'in' : 'not in', lane.kinds);
    return q.orderBy('received_at').executeTakeFirst();
  }

  /** queued -> running, with its `command.started` event, in one transaction. False if someone else took it. */
  async startCommand(commandId: string): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const r = await tx
        .updateTable('inbox')
        .set({ state: 'running' })
        .where('command_id', '=', commandId)
        .where('state', '=', 'queued')
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) return false;
      const row = await tx
        .selectFrom('inbox')
        .select(['origin', 'payload'])
        .where('command_id', '=', commandId)
        .executeTakeFirstOrThrow();
      if (row.origin === 'schedule') {
        const p = JSON.parse(row.payload) as ScheduledPayload;
        await this.#append(tx, {
          type: 'scheduled.started',
          jobId: p.jobId,
          backupId: p.backupId,
          targetId: p.target.id,
          scheduleId: p.scheduleId,
          storageId: p.storage.id,
          disconnected: p.disconnected,
          catchUp: p.catchUp,
          startedAt: new Date().toISOString(),
        });
      } else await this.#append(tx, { type: 'command.started', commandId });
      return true;
    });
  }

  /** running -> succeeded/failed, with its event, in one transaction. */
  async finishCommand(
    commandId: string,
    outcome: { ok: true; result: unknown } | { ok: false; code: string; message: string },
  ): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      const row = await tx
        .selectFrom('inbox')
        .select(['origin', 'payload'])
        .where('command_id', '=', commandId)
        .executeTakeFirst();
      await tx
        .updateTable('inbox')
        // The payload may carry storage credentials; once finished it is not needed.
        .set({
          state: outcome.ok ? 'succeeded' : 'failed',
          finished_at: new Date().toISOString(),
          payload: '{}',
        })
        .where('command_id', '=', commandId)
        .execute();
      // A committed backup keeps its upload record until its success is recorded here, in the
      // same transaction: a crash in between is found at restart, and the backup rolled back.
      const jobId = row ? (JSON.parse(row.payload) as { jobId?: unknown }).jobId : undefined;
      if (outcome.ok && typeof jobId === 'string')
        await tx.deleteFrom('uploads').where('job_id', '=', jobId).execute();
      const error = outcome.ok ? undefined : { code: outcome.code, message: outcome.message.slice(0, 4000) };
      if (row?.origin === 'schedule') {
        const p = JSON.parse(row.payload) as ScheduledPayload;
        await this.#append(tx, {
          type: 'scheduled.finished',
          jobId: p.jobId,
          ok: outcome.ok,
          ...(outcome.ok ? { result: outcome.result } : { error }),
          finishedAt: new Date().toISOString(),
        });
        return;
      }
      await this.#append(
        tx,
        outcome.ok
          ? { type: 'command.succeeded', commandId, result: outcome.result }
          : { type: 'command.failed', commandId, error: error! },
      );
    });
  }

  /**
   * A backup this agent starts on its own schedule: queued in the inbox like a
   * command (so it survives a crash and runs in the jobs lane), reported with
   * scheduled.* events. Not queued when a backup of the same target is already
   * queued or running: schedules never pile up.
   */
  async queueScheduled(p: ScheduledPayload): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const busy = await tx
        .selectFrom('inbox')
        .select('command_id')
        .where('kind', '=', 'backup')
        .where('state', 'in', ['queued', 'running'])
        .where(sql<string>`json_extract(payload, '$.target.id')`, '=', p.target.id)
        .executeTakeFirst();
      if (busy) return false;
      await tx
        .insertInto('inbox')
        .values({
          command_id: p.jobId,
          kind: 'backup',
          payload: JSON.stringify(p),
          expires_at: new Date(Date.now() + 86_400_000).toISOString(),
          state: 'queued',
          received_at: new Date().toISOString(),
          finished_at: null,
          origin: 'schedule',
        })
        .execute();
      return true;
    });
  }

  /**
   * After a crash: a command found `running` was interrupted. It is failed, not
   * re-run (its effect may be partial); commands still `queued` will run.
   */
  async failInterrupted(): Promise<string[]> {
    const running = await this.db
      .selectFrom('inbox')
      .select('command_id')
      .where('state', '=', 'running')
      .execute();
    for (const { command_id } of running) {
      await this.finishCommand(command_id, {
        ok: false,
        code: 'interrupted',
        message: 'agent restarted while the command ran',
      });
    }
    return running.map((r) => r.command_id);
  }

  async recordUpload(jobId: string, storage: unknown, objectKey: string, uploadId?: string) {
    await this.db
      .insertInto('uploads')
      .values({
        job_id: jobId,
        storage: JSON.stringify(storage),
        object_key: objectKey,
        upload_id: uploadId ?? null,
        started_at: new Date().toISOString(),
      })
      .onConflict((oc) =>
        oc.column('job_id').doUpdateSet({ object_key: objectKey, upload_id: uploadId ?? null }),
      )
      .execute();
  }

  async clearUpload(jobId: string) {
    await this.db.deleteFrom('uploads').where('job_id', '=', jobId).execute();
  }

  async unfinishedUploads() {
    return this.db.selectFrom('uploads').selectAll().execute();
  }

  async recentCommandIds(limit = 100): Promise<string[]> {
    const rows = await this.db
      .selectFrom('inbox')
      .select('command_id')
      .orderBy('received_at', 'desc')
      .limit(limit)
      .execute();
    return rows.map((r) => r.command_id);
  }

  /** Forget finished commands older than the longest command TTL, so a redelivery can still be recognised. */
  async pruneInbox(olderThanMs = 31 * 86_400_000) {
    const cutoff = new Date(Date.now() - olderThanMs).toISOString();
    await this.db
      .deleteFrom('inbox')
      .where('state', 'in', ['succeeded', 'failed'])
      .where('finished_at', '<', cutoff)
      .execute();
  }

  async inboxCounts(): Promise<Record<InboxState, number>> {
    const rows = await this.db
      .selectFrom('inbox')
      .select(['state', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy('state')
      .execute();
    const out: Record<InboxState, number> = { queued: 0, running: 0, succeeded: 0, failed: 0 };
    for (const r of rows) out[r.state] = Number(r.n);
    return out;
  }

  // --- outbox ---------------------------------------------------------------

  async appendEvent(body: AgentEventBody): Promise<number> {
    return this.db.transaction().execute((tx) => this.#append(tx, body));
  }

  async #append(tx: Tx, body: AgentEventBody): Promise<number> {
    const r = await tx
      .insertInto('outbox')
      .values({ at: new Date().toISOString(), body: JSON.stringify(body) })
      .returning('seq')
      .executeTakeFirstOrThrow();
    return r.seq;
  }

  async pendingEvents(afterSeq: number, limit: number): Promise<AgentEvent[]> {
    const rows = await this.db
      .selectFrom('outbox')
      .selectAll()
      .where('seq', '>', afterSeq)
      .orderBy('seq')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ seq: r.seq, at: r.at, body: JSON.parse(r.body) }));
  }

  /**
   * The control plane has applied every event up to `upTo`: delete them. Also
   * make sure new events are numbered above `upTo`, in case this store is older
   * than what the control plane has seen (restored state directory).
   */
  async ackEvents(upTo: number): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('outbox').where('seq', '<=', upTo).execute();
      await sql`UPDATE sqlite_sequence SET seq = max(seq, ${upTo}) WHERE name = 'outbox'`.execute(tx);
      await sql`INSERT INTO sqlite_sequence (name, seq) SELECT 'outbox', ${upTo} WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'outbox')`.execute(
        tx,
      );
      await this.setMeta('events_acked_up_to', String(upTo), tx);
    });
  }

  async eventsAckedUpTo(): Promise<number> {
    return Number((await this.getMeta('events_acked_up_to')) ?? 0);
  }

  async outboxDepth(): Promise<number> {
    const r = await this.db
      .selectFrom('outbox')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }
}
