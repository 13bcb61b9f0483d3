import { z } from 'zod';

/**
 * PostgreSQL write-ahead log positions and file names, shared by the agent (which
 * archives WAL) and the control plane (which indexes it and computes recovery windows).
 *
 * An LSN `X/Y` is the 64-bit position X·2³² + Y. A segment file name is 24 hex digits:
 * timeline (8), then the segment number split into "log" (8) and "seg" (8), where a
 * log holds 2³² / segmentBytes segments. A timeline history file is `TTTTTTTT.history`.
 */

export const WAL_SEGMENT_NAME = /^[0-9A-F]{24}$/;
export const WAL_HISTORY_NAME = /^[0-9A-F]{8}\.history$/;
/** What a WAL archive holds: a segment or a timeline history file. */
export const WalFileName = z
  .string()
  .refine((s) => WAL_SEGMENT_NAME.test(s) || WAL_HISTORY_NAME.test(s), 'a WAL segment or history file name');

export const LSN = /^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i;

export function parseLsn(lsn: string): bigint {
  if (!LSN.test(lsn)) throw new Error(`not an LSN: ${lsn}`);
  const [hi, lo] = lsn.split('/') as [string, string];
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

export function formatLsn(v: bigint): string {
  return `${(v >> 32n).toString(16).toUpperCase()}/${(v & 0xffffffffn).toString(16).toUpperCase()}`;
}

const hex8 = (n: bigint | number) => n.toString(16).toUpperCase().padStart(8, '0');

/** Segments per "log" (the middle 8 digits of a name). */
function perLog(segmentBytes: number): bigint {
  return 0x100000000n / BigInt(segmentBytes);
}

/** The segment number holding `lsn`. */
export function segmentOf(lsn: bigint, segmentBytes: number): bigint {
  return lsn / BigInt(segmentBytes);
}

export function segmentName(timeline: number, segno: bigint, segmentBytes: number): string {
  const per = perLog(segmentBytes);
  return `${hex8(timeline)}${hex8(segno / per)}${hex8(segno % per)}`;
}

export function parseSegmentName(
  name: string,
  segmentBytes: number,
): { timeline: number; segno: bigint } | undefined {
  if (!WAL_SEGMENT_NAME.test(name)) return undefined;
  const timeline = Number.parseInt(name.slice(0, 8), 16);
  const log = BigInt(`0x${name.slice(8, 16)}`);
  const seg = BigInt(`0x${name.slice(16, 24)}`);
  if (seg >= perLog(segmentBytes)) return undefined;
  return { timeline, segno: log * perLog(segmentBytes) + seg };
}

/** The first LSN a segment holds. */
export function segmentStartLsn(segno: bigint, segmentBytes: number): bigint {
  return segno * BigInt(segmentBytes);
}

/** WAL segment sizes PostgreSQL allows: powers of two from 1 MiB to 1 GiB. */
export function validSegmentBytes(n: number): boolean {
  return Number.isInteger(n) && n >= 1 << 20 && n <= 1 << 30 && (n & (n - 1)) === 0;
}

/** One archived WAL file as the agent reports it (event `wal.archived`). */
export const WalArchived = z.object({
  type: z.literal('wal.archived'),
  targetId: z.uuid(),
  name: WalFileName,
  objectKey: z.string().min(1).max(4096),
  sizeBytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** The segment's own data key, wrapped to the key-encryption key and bound to this file (key-binding.ts). */
  wrappedKey: z.string().min(1).max(4096),
  kekId: z.string().min(1).max(128),
  segmentBytes: z.number().int().positive(),
  systemIdentifier: z.string().regex(/^\d{1,20}$/),
  /** The storage profile it went to (the target's WAL storage). */
  storageId: z.string().max(128),
  /** When the file was complete on this host (its last write): nothing in it is newer. */
  completedAt: z.string().max(64),
  archivedAt: z.string().max(64),
});
export type WalArchived = z.infer<typeof WalArchived>;

/** The archiver's state for one target, sent when it changes and once a minute (event `wal.status`). */
export const WalStatus = z.object({
  type: z.literal('wal.status'),
  targetId: z.uuid(),
  receiving: z.boolean(),
  /** Completed WAL files waiting on this host to be uploaded, and their bytes. */
  spoolFiles: z.number().int().nonnegative(),
  spoolBytes: z.number().int().nonnegative(),
  spoolLimitBytes: z.number().int().nonnegative(),
  /** WAL the server keeps for the archiver's replication slot (bytes), when known. */
  slotRetainedBytes: z.number().int().nonnegative().nullable(),
  lastArchived: z.string().max(64).nullable(),
  error: z.string().max(4096).nullable(),
  at: z.string().max(64),
});
export type WalStatus = z.infer<typeof WalStatus>;

/** Retention removed a physical target's WAL older than its oldest kept base backup (event `wal.pruned`). */
export const WalPruned = z.object({
  type: z.literal('wal.pruned'),
  targetId: z.uuid(),
  /** Every segment file whose name sorts before this one is gone. */
  before: z.string().regex(WAL_SEGMENT_NAME),
  files: z.number().int().nonnegative(),
});
export type WalPruned = z.infer<typeof WalPruned>;

/** The binding id (`bid`) of an archived WAL file's data key. */
export function walKeyId(name: string): string {
  return `wal/${name}`;
}

/**
 * The base backups a restore of `base` needs, oldest first: itself, and for an incremental
 * base backup (PostgreSQL 17) each parent back to the full one its chain starts with.
 * Undefined when a link is missing from `byId` (the chain is broken) or loops.
 */
export function chainOf<T extends { backupId: string; engineMeta?: Record<string, string> | undefined }>(
  base: T,
  byId: (id: string) => T | undefined,
  maxLength = 100,
): T[] | undefined {
  const chain = [base];
  for (let b = base; b.engineMeta?.incremental === 'true'; ) {
    const parentId = b.engineMeta.parentBackupId;
    const parent = parentId ? byId(parentId) : undefined;
    if (!parent || chain.length >= maxLength || chain.includes(parent)) return undefined;
    chain.unshift(parent);
    b = parent;
  }
  return chain;
}

/**
 * The base backups kept incremental ones are built on (PostgreSQL 17 chains): each stays
 * while any backup built on it stays, however old it is.
 */
export function chainAncestors(
  metas: { backupId: string; engineMeta?: Record<string, string> | undefined }[],
  kept: Iterable<string>,
): Set<string> {
  const byId = new Map(metas.map((m) => [m.backupId, m]));
  const out = new Set<string>();
  for (const id of kept) {
    for (let m = byId.get(id); m?.engineMeta?.incremental === 'true'; ) {
      const parent = byId.get(m.engineMeta.parentBackupId ?? '');
      if (!parent || out.has(parent.backupId)) break;
      out.add(parent.backupId);
      m = parent;
    }
  }
  return out;
}
