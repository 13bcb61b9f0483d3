import { randomUUID } from 'node:crypto';
import type { Logger } from '@dbbackup/logger';
import type { JWK } from 'jose';
import { sql } from 'kysely';
import { insertKek, rewrapToKek } from '../crypto/key-encryption-key.js';
import type { SecretBox } from '../crypto/secret-box.js';
import type { Db } from '../db/database.js';
import { conflict, notFound } from '../problem.js';
import { bumpAgentConfig } from './agent-config.js';
import { createCommand } from './command-state.js';
import type { NotifyBus } from './notify-bus.js';
import { periodic } from './periodic.js';
import { storageRefFor } from './storage-specs.js';

/**
 * Key rotation. A new key-encryption key becomes the active one at once (new
 * backups and agents' schedules wrap to it). A background worker then:
 *
 * 1. re-wraps every catalogued backup's data key to it — unwrapped and re-wrapped
 *    in this process's memory only, keeping the key's binding to its backup —
 *    which needs no agent, so revoked and offline agents never hold a rotation up;
 * 2. has the agent that made each backup rewrite its meta.json (`meta.rewrite`),
 *    so the bucket opens with a key that still exists (`meta_kid` tracks what the
 *    meta.json names); no data object is read or rewritten;
 * 3. declares the rotation finished once every meta.json of an agent that is not
 *    revoked names the new key, or once DBBACKUP_KEY_ROTATION_MAX_WAIT_MS has passed
 *    (it then says how many meta.json still name an older key);
 * 4. deletes an old key's private half only when nothing can still need it: no
 *    backup's catalogue entry or meta.json names it, no unfinished backup job was
 *    started before its agent acknowledged a configuration with the new key, every
 *    agent that is not revoked has acknowledged one, and DBBACKUP_KEY_RETIRE_GRACE_MS
 *    has passed since it stopped being active. A revoked agent's meta.json keeps its
 *    old key alive until those backups are deleted (the README says so).
 *
 * A backup that arrives after a rotation, wrapped to an older key, is re-wrapped in
 * the catalogue on receipt and its meta.json rewritten by step 2.
 */
export interface RotationView {
  id: string;
  toKid: string;
  state: 'running' | 'succeeded' | 'failed';
  total: number;
  done: number;
  lastError: string | null;
  createdAt: Date;
  finishedAt: Date | null;
}

export async function startRotation(
  db: Db,
  box: SecretBox,
  bus: NotifyBus,
  actor: { id: string; name: string },
) {
  const running = await db
    .selectFrom('key_rotations')
    .select('id')
    .where('state', '=', 'running')
    .executeTakeFirst();
  if (running) throw conflict(`key rotation ${running.id} is still running`, 'rotation-running');
  const id = randomUUID();
  try {
    await db.transaction().execute(async (tx) => {
      await tx
        .updateTable('keys')
        .set({ active: false, deactivated_at: new Date() })
        .where('purpose', '=', 'kek')
        .where('active', '=', true)
        .execute();
      const k = await insertKek(tx, box, true);
      await tx
        .insertInto('key_rotations')
        .values({ id, to_kid: k.kid, state: 'running', created_by: actor.name })
        .execute();
    });
  } catch (err) {
    // Two rotations asked for at once: the unique index lets one through.
    if ((err as { code?: string }).code === '23505')
      throw conflict('a key rotation is already running', 'rotation-running');
    throw err;
  }
  // Backups started from now on wrap to the new key: every replica reads the active key at each use.
  const agents = await db.selectFrom('agents').select('id').where('status', '!=', 'revoked').execute();
  for (const a of agents) await bumpAgentConfig(db, bus, a.id, actor.id);
  return id;
}

export async function rotationView(db: Db, id: string): Promise<RotationView> {
  const r = await db.selectFrom('key_rotations').selectAll().where('id', '=', id).executeTakeFirst();
  if (!r) throw notFound('key rotation');
  return {
    id: r.id,
    toKid: r.to_kid,
    state: r.state,
    total: r.total,
    done: r.done,
    lastError: r.last_error,
    createdAt: r.created_at,
    finishedAt: r.finished_at,
  };
}

type CatalogueRow = {
  id: string;
  agent_id: string;
  storage_id: string;
  meta_key: string;
  sha256: string;
  key_bound: boolean;
  meta: Record<string, unknown>;
};

const catalogued = (b: CatalogueRow) => ({
  backupId: b.id,
  agentId: b.agent_id,
  targetId: String(b.meta.targetId),
  wrappedKey: String(b.meta.wrappedKey),
  kekId: String(b.meta.kekId),
  keyBound: b.key_bound,
});

export class KeyRotator {
  #worker: { stop(): Promise<void> } | undefined;
  constructor(
    readonly db: Db,
    readonly box: SecretBox,
    readonly bus: NotifyBus,
    readonly log: Logger,
    readonly o: { intervalMs: number; commandTimeoutMs: number; retireGraceMs: number; maxWaitMs: number },
  ) {}

  start() {
    this.#worker = periodic(this.o.intervalMs, () => this.tick(), this.log, 'key rotation');
  }

  async stop() {
    await this.#worker?.stop();
  }

  async tick() {
    const active = await this.db
      .selectFrom('keys')
      .select(['kid', 'public_jwk'])
      .where('purpose', '=', 'kek')
      .where('active', '=', true)
      .executeTakeFirst();
    if (!active) return;
    const to = { kid: active.kid, publicJwk: active.public_jwk as unknown as JWK };
    let lastError: string | null = null;
    const note = (b: { id: string }, err: unknown, what: string) => {
      lastError = `backup ${b.id}: ${(err as Error).message}`.slice(0, 500);
      this.log.warn({ backupId: b.id, err: (err as Error).message }, `key rotation: ${what}`);
    };
    // 1. The catalogue: every entry wrapped to the active key (no agent needed).
    const stale = await this.db
      .selectFrom('backups')
      .select(['id', 'agent_id', 'storage_id', 'meta_key', 'sha256', 'key_bound', 'meta'])
      .where('deleted_at', 'is', null)
      .where(sql<boolean>`meta->>'kekId' IS DISTINCT FROM ${to.kid}`)
      .orderBy('finished_at')
      .limit(100)
      .execute();
    for (const b of stale) {
      try {
        await this.rewrapCatalogue(b, to);
      } catch (err) {
        note(b, err, 'catalogue entry not re-wrapped yet');
      }
    }
    // 2. The bucket: each meta.json rewritten by its (online) agent to what the catalogue holds.
    const metas = await this.db
      .selectFrom('backups as b')
      .innerJoin('agents as a', 'a.id', 'b.agent_id')
      .select(['b.id', 'b.agent_id', 'b.storage_id', 'b.meta_key', 'b.sha256', 'b.key_bound', 'b.meta'])
      .where('b.deleted_at', 'is', null)
      .where(sql<boolean>`b.meta_kid IS DISTINCT FROM b.meta->>'kekId'`)
      .where('a.status', '=', 'online')
      .orderBy('b.finished_at')
      .limit(20)
      .execute();
    for (const b of metas) {
      try {
        await this.rewriteMeta(b);
      } catch (err) {
        note(b, err, 'meta.json not rewritten yet');
      }
    }
    // 3. Old keys nothing can need any more lose their private half.
    await this.retireKeys();
    // 4. The running rotation's progress, and its end.
    await this.recordProgress(lastError);
  }

  /** The running rotation's counts; it ends when nothing of a non-revoked agent is left, or after maxWaitMs. */
  async recordProgress(lastError: string | null) {
    const rot = await this.db
      .selectFrom('key_rotations')
      .selectAll()
      .where('state', '=', 'running')
      .executeTakeFirst();
    if (!rot) return;
    const counts = await sql<{ total: number; done: number; pending: number }>`
      SELECT count(*)::int AS total,
             count(*) FILTER (WHERE b.meta->>'kekId' = ${rot.to_kid} AND b.meta_kid = ${rot.to_kid})::int AS done,
             count(*) FILTER (WHERE (b.meta->>'kekId' IS DISTINCT FROM ${rot.to_kid} OR b.meta_kid IS DISTINCT FROM ${rot.to_kid})
                                AND a.status <> 'revoked')::int AS pending
      FROM backups b JOIN agents a ON a.id = b.agent_id WHERE b.deleted_at IS NULL`.execute(this.db);
    const { total, done, pending } = counts.rows[0] as { total: number; done: number; pending: number };
    const timedOut = Date.now() - new Date(rot.created_at).getTime() > this.o.maxWaitMs;
    const finished = pending === 0 || timedOut;
    const leftOver = total - done;
    const leftOverNote = `${leftOver} meta.json (of revoked or unreachable agents) still name an older key, which is kept for them`;
    await this.db
      .updateTable('key_rotations')
      .set({
        total,
        done,
        ...(lastError ? { last_error: lastError } : {}),
        ...(finished
          ? { state: 'succeeded', finished_at: new Date(), ...(leftOver ? { last_error: leftOverNote } : {}) }
          : {}),
      })
      .where('id', '=', rot.id)
      .execute();
    if (finished) this.log.info({ rotationId: rot.id, backups: total, leftOver }, 'key rotation finished');
  }

  /** Re-wrap one catalogue entry to the active key, keeping its binding (the meta.json follows in step 2). */
  async rewrapCatalogue(b: CatalogueRow, to: { kid: string; publicJwk: JWK }) {
    const wrappedKey = await rewrapToKek(this.db, this.box, catalogued(b), to);
    await this.db
      .updateTable('backups')
      .set({
        meta: sql`jsonb_set(jsonb_set(meta, '{wrappedKey}', to_jsonb(${wrappedKey}::text)), '{kekId}', to_jsonb(${to.kid}::text))`,
      })
      .where('id', '=', b.id)
      .where(sql<boolean>`meta->>'kekId' = ${b.meta.kekId as string}`)
      .execute();
  }

  /** Have the agent rewrite one meta.json to the catalogue's wrapping, and wait for its answer. */
  async rewriteMeta(b: CatalogueRow) {
    const wrappedKey = String(b.meta.wrappedKey);
    const kekId = String(b.meta.kekId);
    const commandId = await createCommand(this.db, {
      agentId: b.agent_id,
      command: {
        kind: 'meta.rewrite',
        storage: await storageRefFor(this.db, b.storage_id),
        metaKey: b.meta_key,
        backupId: b.id,
        sha256: b.sha256,
        wrappedKey,
        kekId,
      },
      ttlSeconds: Math.ceil(this.o.commandTimeoutMs / 1000),
      createdBy: null,
    });
    await this.bus.publish({ kind: 'commands', agentId: b.agent_id });
    const deadline = Date.now() + this.o.commandTimeoutMs;
    for (;;) {
      const c = await this.db
        .selectFrom('commands')
        .select(['state', 'error'])
        .where('id', '=', commandId)
        .executeTakeFirstOrThrow();
      if (c.state === 'succeeded') break;
      if (['failed', 'cancelled', 'expired'].includes(c.state)) {
        throw new Error(
          `meta.rewrite ${c.state}: ${(c.error as { message?: string } | null)?.message ?? ''}`,
        );
      }
      if (Date.now() > deadline) throw new Error('meta.rewrite not answered in time');
      await new Promise((r) => setTimeout(r, 100));
    }
    await this.db.updateTable('backups').set({ meta_kid: kekId }).where('id', '=', b.id).execute();
  }

  /** Delete the private half of every old key that no backup, job or agent can still need. */
  async retireKeys() {
    const graceCutoff = new Date(Date.now() - this.o.retireGraceMs);
    const old = await this.db
      .selectFrom('keys')
      .select(['kid', 'deactivated_at'])
      .where('purpose', '=', 'kek')
      .where('active', '=', false)
      .where('private_enc', 'is not', null)
      .where('deactivated_at', '<=', graceCutoff)
      .execute();
    for (const k of old) {
      const since = k.deactivated_at as Date;
      const { rows } = await sql<{ blocker: string }>`
        SELECT 'backup ' || id AS blocker FROM backups
          WHERE deleted_at IS NULL AND (meta->>'kekId' = ${k.kid} OR meta_kid = ${k.kid})
        UNION ALL
        SELECT 'command ' || id FROM commands
          WHERE kind = 'backup' AND state IN ('queued','delivered','acknowledged','running')
            AND payload->'kek'->>'kid' = ${k.kid}
        UNION ALL
        SELECT 'agent ' || a.id FROM agents a
          WHERE a.status <> 'revoked' AND NOT EXISTS (
            SELECT 1 FROM commands c WHERE c.agent_id = a.id AND c.kind = 'config.sync'
              AND c.state = 'succeeded' AND c.delivered_at > ${since})
        UNION ALL
        SELECT 'job ' || j.id FROM jobs j
          WHERE j.type = 'backup' AND j.state IN ('queued','running','stalled')
            AND j.agent_id NOT IN (SELECT id FROM agents WHERE status = 'revoked')
            AND j.created_at <= COALESCE((
              SELECT min(c.finished_at) FROM commands c WHERE c.agent_id = j.agent_id
                AND c.kind = 'config.sync' AND c.state = 'succeeded' AND c.delivered_at > ${since}),
              'infinity'::timestamptz)
        LIMIT 1`.execute(this.db);
      if (rows.length) continue;
      await this.db
        .updateTable('keys')
        .set({ private_enc: null, retired_at: new Date() })
        .where('kid', '=', k.kid)
        .where('private_enc', 'is not', null)
        .execute();
      this.log.info({ kid: k.kid }, 'old key-encryption key retired: nothing needs it any more');
    }
  }
}
