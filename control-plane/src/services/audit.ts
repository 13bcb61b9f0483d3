import { createHash } from 'node:crypto';
import { canonicalJson } from '@dbbackup/proto';
import { type Selectable, sql } from 'kysely';
import type { Db } from '../db/database.js';
import type { AuditLogTable, AuditOutcome } from '../db/schema.js';

/**
 * The append-only audit trail. The table refuses UPDATE, DELETE and TRUNCATE
 * (migration 0006); each row also carries SHA-256(previous hash, row), appended
 * under one advisory lock so ids and the chain agree, and `verifyAuditChain`
 * recomputes the chain to show a row changed or removed behind the trigger's back.
 */
export interface AuditEntry {
  actor: string;
  actorId?: string | null;
  sourceIp?: string | null;
  action: string;
  target?: string | null;
  outcome: AuditOutcome;
  status?: number | null;
  detail?: Record<string, unknown>;
}

/** A row as read back (the table's own type, schema.ts); the driver may hand `id` back as a number. */
export type AuditRow = Selectable<AuditLogTable>;

export const GENESIS_HASH = '0'.repeat(64);
const AUDIT_LOCK = 727002;

// The same value always hashes the same (jsonb reorders keys): one canonical form for the wire and the trail.
export { canonicalJson } from '@dbbackup/proto';

export function auditHash(prev: string, r: Omit<AuditRow, 'prev_hash' | 'hash'>): string {
  // The id as text: the driver may hand bigint back as a number.
  const body = canonicalJson([
    String(r.id),
    r.at.toISOString(),
    r.actor,
    r.actor_id,
    r.source_ip,
    r.action,
    r.target,
    r.outcome,
    r.status,
    r.detail,
  ]);
  return createHash('sha256').update(`${prev}\n${body}`).digest('hex');
}

/**
 * Append one entry. Inside the caller's transaction when given one (it commits or rolls back
 * with it); otherwise it joins the next batch: entries made at the same moment (a burst of API
 * calls) are chained and written in one transaction under the lock, instead of each request
 * holding a database connection while it waits for the lock.
 */
export function appendAudit(db: Db, e: AuditEntry): Promise<string> {
  if (db.isTransaction) return appendChained(db, [e]).then((ids) => ids[0] as string);
  let w = writers.get(db);
  if (!w) {
    w = new BatchWriter(db);
    writers.set(db, w);
  }
  return w.add(e);
}

const writers = new WeakMap<Db, BatchWriter>();

/** One batch at a time per database handle; what arrives while one is written forms the next. */
class BatchWriter {
  #queue: { e: AuditEntry; resolve: (id: string) => void; reject: (err: unknown) => void }[] = [];
  #running = false;

  constructor(readonly db: Db) {}

  add(e: AuditEntry): Promise<string> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ e, resolve, reject });
      if (!this.#running) void this.#drain();
    });
  }

  async #drain() {
    this.#running = true;
    while (this.#queue.length) {
      const batch = this.#queue.splice(0, 500);
      try {
        const ids = await this.db.transaction().execute((tx) =>
          appendChained(
            tx as unknown as Db,
            batch.map((b) => b.e),
          ),
        );
        for (const [i, b] of batch.entries()) b.resolve(ids[i] as string);
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
    this.#running = false;
  }
}

/** Chain and insert `entries` in order, in the transaction `tx`, under the audit lock. */
async function appendChained(tx: Db, entries: AuditEntry[]): Promise<string[]> {
  await sql`SELECT pg_advisory_xact_lock(${AUDIT_LOCK})`.execute(tx);
  const last = await tx
    .selectFrom('audit_log')
    .select('hash')
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
  const { rows: ids } = await sql<{ id: string }>`
    SELECT nextval('audit_log_id_seq')::text AS id FROM generate_series(1, ${entries.length}::int)`.execute(
    tx,
  );
  // In id order, so the chain follows the ids that verification walks.
  ids.sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
  let prev = last?.hash ?? GENESIS_HASH;
  const at = new Date();
  const rows = entries.map((e, i) => {
    const row = {
      id: (ids[i] as { id: string }).id,
      at,
      actor: e.actor,
      actor_id: e.actorId ?? null,
      source_ip: e.sourceIp ?? null,
      action: e.action,
      target: e.target ?? null,
      outcome: e.outcome,
      status: e.status ?? null,
      detail: e.detail ?? {},
    };
    const hash = auditHash(prev, row);
    const out = { ...row, detail: JSON.stringify(row.detail), prev_hash: prev, hash };
    prev = hash;
    return out;
  });
  await tx.insertInto('audit_log').values(rows).execute();
  return rows.map((r) => r.id);
}

export type ChainCheck =
  | { ok: true; rows: number; head: string }
  | { ok: false; rows: number; brokenAt: string; reason: string };

/** Recompute the whole chain in id order, in pages. */
export async function verifyAuditChain(db: Db): Promise<ChainCheck> {
  let prev = GENESIS_HASH;
  let after = '0';
  let rows = 0;
  for (;;) {
    const page = await db
      .selectFrom('audit_log')
      .selectAll()
      .where(sql<boolean>`id > ${after}::bigint`)
      .orderBy('id')
      .limit(1000)
      .execute();
    if (page.length === 0) return { ok: true, rows, head: prev };
    for (const r of page) {
      rows++;
      if (r.prev_hash !== prev) {
        return {
          ok: false,
          rows,
          brokenAt: String(r.id),
          reason: 'previous hash does not match: a row before it was removed or changed',
        };
      }
      if (auditHash(prev, r) !== r.hash) {
        return {
          ok: false,
          rows,
          brokenAt: String(r.id),
          reason: 'row content does not match its hash: the row was changed',
        };
      }
      prev = r.hash;
      after = String(r.id);
    }
  }
}
