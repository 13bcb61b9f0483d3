import { z } from 'zod';
import { BackupMeta } from './targets.js';

/**
 * What travels on the wire about a backup is bounded: a database with tens of
 * thousands of tables must not make a result or a command outgrow the frame
 * limit. The full table list stays in the backup's meta.json; results, the
 * catalogue and restore/verify commands carry the first MAX_SUMMARY_TABLES
 * entries and `tablesTotal`.
 */
export const MAX_SUMMARY_TABLES = 500;

const TableCount = z.object({ table: z.string().max(512), rows: z.number(), exact: z.boolean() });

/** A backup's metadata as results, the catalogue and commands carry it. */
export const BackupMetaSummary = BackupMeta.extend({
  filename: z.string().min(1).max(512),
  objectKey: z.string().min(1).max(2048),
  backupId: z.uuid(),
  targetId: z.uuid(),
  agentId: z.uuid(),
  wrappedKey: z.string().min(1).max(4096),
  kekId: z.string().min(1).max(128),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  sizeBytes: z.number().int().nonnegative(),
  tables: z.array(TableCount).max(MAX_SUMMARY_TABLES),
  /** How many tables meta.json lists (absent: all of them are here). */
  tablesTotal: z.number().int().nonnegative().optional(),
  engineMeta: z.record(z.string().max(64), z.string().max(1024)).optional(),
});
export type BackupMetaSummary = z.infer<typeof BackupMetaSummary>;

/** The bounded form of a backup's metadata. */
export function summariseMeta(meta: BackupMeta): BackupMetaSummary {
  if (meta.tables.length <= MAX_SUMMARY_TABLES) return meta as BackupMetaSummary;
  return {
    ...meta,
    tables: meta.tables.slice(0, MAX_SUMMARY_TABLES),
    tablesTotal: meta.tables.length,
  } as BackupMetaSummary;
}

/** A backup job's result (`command.succeeded` of a backup, `scheduled.finished` with ok). */
export const BackupResult = z.object({
  meta: BackupMetaSummary,
  metaKey: z.string().min(1).max(2048),
  uploadRetries: z.number().int().nonnegative().optional(),
});
export type BackupResult = z.infer<typeof BackupResult>;
