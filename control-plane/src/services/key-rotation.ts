import { randomUUID } from 'node:crypto';
import type { Logger } from '@dbbackup/logger';
import type { JWK } from 'jose';
import { sql } from 'kysely';
import { insertKek, rewrapToKek } from '../crypto/key-encryption-key.js';
import type { SecretBox } from '../crypto/secret-box.js';
import type { Db } from '../db/database.js';
import { conflict, notFound } from '../http/problem.js';
import { bumpAgentConfig } from './agent-config.js';
import { createCommand } from './commands.js';
import { storageRefFor } from './jobs.js';
import type { NotifyBus } from './notify-bus.js';
import { periodic } from './periodic.js';

/**
 * Key rotation. A new key-encryption key becomes the active one at once (new
 * backups and agents' schedules wrap to it); a background worker then re-wraps
 * every catalogued backup's data key to it — unwrapped and re-wrapped in this
 * process's memory only — and has the agent that made the backup rewrite its
 * meta.json (`meta.rewrite`); no data object is read or rewritten. Progress is
 * the catalogue itself (backups whose meta names the new kid), so the job
 * resumes after a restart. Old keys stay until every backup is re-wrapped;
 * then their private halves are deleted.
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
      await tx.updateTable('keys').set({ active: false }).where('purpose', '=', 'kek').execute();
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

export class KeyRotator {
  #worker: { stop(): Promise<void> } | undefined;
  constructor(
    readonly db: Db,
    readonly box: SecretBox,
    readonly bus: NotifyBus,
    readonly log: Logger,
    readonly o: { intervalMs: number; commandTimeoutMs: number },
  ) {}

  start() {
    this.#worker = periodic(this.o.intervalMs, () => this.tick(), this.log, 'key rotation');
  }

  async stop() {
    await this.#worker?.stop();
  }

  async tick() {
    const rot = await this.db
      .selectFrom('key_rotations')
      .selectAll()
      .where('state', '=', 'running')
      .executeTakeFirst();
    if (!rot) return;
    const key = await this.db
      .selectFrom('keys')
      .select('public_jwk')
      .where('kid', '=', rot.to_kid)
      .executeTakeFirstOrThrow();
    // Backups still wrapped to another key whose agent is online, a few at a time.
    const todo = await this.db
      .selectFrom('backups as b')
      .innerJoin('agents as a', 'a.id', 'b.agent_id')
      .select(['b.id', 'b.agent_id', 'b.storage_id', 'b.meta_key', 'b.sha256', 'b.key_bound', 'b.meta'])
      .where('b.deleted_at', 'is', null)
      .where(sql<boolean>`b.meta->>'kekId' IS DISTINCT FROM ${rot.to_kid}`)
      .where('a.status', '=', 'online')
      .orderBy('b.finished_at')
      .limit(20)
      .execute();
    let lastError: string | null = null;
    for (const b of todo) {
      try {
        await this.rewrapOne(b, rot.to_kid, key.public_jwk as unknown as JWK);
      } catch (err) {
        lastError = `backup ${b.id}: ${(err as Error).message}`.slice(0, 500);
        this.log.warn(
          { backupId: b.id, err: (err as Error).message },
          'key rotation: backup not re-wrapped yet',
        );
      }
    }
    const counts = await sql<{ total: number; done: number }>`
      SELECT count(*)::int AS total, count(*) FILTER (WHERE meta->>'kekId' = ${rot.to_kid})::int AS done
      FROM backups WHERE deleted_at IS NULL`.execute(this.db);
    const { total, done } = counts.rows[0] as { total: number; done: number };
    const finished = done === total;
    await this.db
      .updateTable('key_rotations')
      .set({
        total,
        done,
        ...(lastError ? { last_error: lastError } : {}),
        ...(finished ? { state: 'succeeded', finished_at: new Date() } : {}),
      })
      .where('id', '=', rot.id)
      .execute();
    if (finished) {
      // Every backup is wrapped to the new key: the old private keys go.
      await this.db
        .updateTable('keys')
        .set({ private_enc: null, retired_at: new Date() })
        .where('purpose', '=', 'kek')
        .where('kid', '!=', rot.to_kid)
        .where('private_enc', 'is not', null)
        .execute();
      this.log.info({ rotationId: rot.id, backups: total }, 'key rotation finished; old keys deleted');
    }
  }

  async rewrapOne(
    b: {
      id: string;
      agent_id: string;
      storage_id: string;
      meta_key: string;
      sha256: string;
      key_bound: boolean;
      meta: Record<string, unknown>;
    },
    toKid: string,
    toPublic: JWK,
  ) {
    const wrappedKey = await rewrapToKek(
      this.db,
      this.box,
      {
        backupId: b.id,
        agentId: b.agent_id,
        targetId: String(b.meta.targetId),
        wrappedKey: b.meta.wrappedKey as string,
        kekId: b.meta.kekId as string,
        keyBound: b.key_bound,
      },
      { kid: toKid, publicJwk: toPublic },
    );
    const commandId = await createCommand(this.db, {
      agentId: b.agent_id,
      command: {
        kind: 'meta.rewrite',
        storage: await storageRefFor(this.db, this.box, b.storage_id),
        metaKey: b.meta_key,
        backupId: b.id,
        sha256: b.sha256,
        wrappedKey,
        kekId: toKid,
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
    // The catalogue follows storage: from now on restores unwrap with the new key.
    await this.db
      .updateTable('backups')
      .set({
        meta: sql`jsonb_set(jsonb_set(meta, '{wrappedKey}', to_jsonb(${wrappedKey}::text)), '{kekId}', to_jsonb(${toKid}::text))`,
      })
      .where('id', '=', b.id)
      .execute();
  }
}
