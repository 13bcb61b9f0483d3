import { type Generated, type Migration, sql } from 'kysely';

/** The agent's SQLite store: its tables as kysely sees them, and the migrations that make them. */

export type InboxState = 'queued' | 'running' | 'succeeded' | 'failed';

export interface InboxTable {
  command_id: string;
  kind: string;
  payload: string;
  expires_at: string;
  state: InboxState;
  received_at: string;
  finished_at: string | null;
  /** 'cp': a command from the control plane; 'schedule': a backup this agent started on its own clock. */
  origin: Generated<'cp' | 'schedule'>;
}
interface OutboxTable {
  seq: Generated<number>;
  at: string;
  body: string;
}
interface MetaTable {
  key: string;
  value: string;
}
interface UploadsTable {
  job_id: string;
  storage: string;
  object_key: string;
  upload_id: string | null;
  started_at: string;
}
export interface StoreSchema {
  inbox: InboxTable;
  outbox: OutboxTable;
  meta: MetaTable;
  uploads: UploadsTable;
}

export const migrations: Record<string, Migration> = {
  '0001_inbox_outbox': {
    async up(db) {
      await sql`CREATE TABLE inbox (
        command_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        state TEXT NOT NULL,
        received_at TEXT NOT NULL,
        finished_at TEXT
      )`.execute(db);
      await sql`CREATE INDEX inbox_state ON inbox (state, received_at)`.execute(db);
      // AUTOINCREMENT: a sequence number is never reused, even after the row is deleted.
      await sql`CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, body TEXT NOT NULL)`.execute(
        db,
      );
      await sql`CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`.execute(db);
    },
  },
  '0002_uploads': {
    async up(db) {
      // Unfinished uploads, so that a restart can abort them (the storage spec holds its credentials
      // for that; the row is deleted as soon as the upload is committed or aborted).
      await sql`CREATE TABLE uploads (
        job_id TEXT PRIMARY KEY,
        storage TEXT NOT NULL,
        object_key TEXT NOT NULL,
        upload_id TEXT,
        started_at TEXT NOT NULL
      )`.execute(db);
    },
  },
  '0003_schedules': {
    async up(db) {
      await sql`ALTER TABLE inbox ADD COLUMN origin TEXT NOT NULL DEFAULT 'cp'`.execute(db);
    },
  },
};
