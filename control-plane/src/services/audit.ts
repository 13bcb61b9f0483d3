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

/** Append one entry; inside the caller's transaction when given one (it commits or rolls back with it). */
export async function appendAudit(db: Db, e: AuditEntry): Promise<string> {
  const inTx = <T>(fn: (tx: Db) => Promise<T>) =>
    db.isTransaction ? fn(db) : db.transaction().execute((tx) => fn(tx as unknown as Db));
  return inTx(async (tx) => {
    await sql`SELECT pg_advisory_xact_lock(${AUDIT_LOCK})`.execute(tx);
    const last = await tx
      .selectFrom('audit_log')
      .select('hash')
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    const { rows } = await sql<{ id: string }>`SELECT nextval('audit_log_id_seq')::text AS id`.execute(tx);
    const row = {
      id: (rows[0] as { id: string }).id,
      at: new Date(),
      actor: e.actor,
      actor_id: e.actorId ?? null,
      source_ip: e.sourceIp ?? null,
      action: e.action,
      target: e.target ?? null,
      outcome: e.outcome,
      status: e.status ?? null,
      detail: e.detail ?? {},
    };
    const prev = last?.hash ?? GENESIS_HASH;
    await tx
      .insertInto('audit_log')
      .values({ ...row, detail: JSON.stringify(row.detail), prev_hash: prev, hash: auditHash(prev, row) })
      .execute();
    return row.id;
  });
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
