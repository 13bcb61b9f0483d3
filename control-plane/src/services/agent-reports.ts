import {
  BackupResult,
  backupFileId,
  joinKey,
  jweProtectedHeader,
  keyBindingProblem,
  safeSegment,
} from '@dbbackup/proto';
import type { Db } from '../db/database.js';

/**
 * An agent reported something the control plane did not ask of it, or that does
 * not match its own records. The event changes nothing; it is recorded as
 * rejected with this reason, raised as an alert and written to the audit trail
 * (commands.ts), and acknowledged so the agent's stream moves on.
 */
export class EventRejected extends Error {
  override name = 'EventRejected';
  constructor(
    reason: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(reason);
  }
}

export function reject(reason: string, details: Record<string, unknown> = {}): never {
  throw new EventRejected(reason, details);
}

/** What the control plane assigned to one backup run, against which the agent's result is checked. */
export interface ExpectedBackup {
  agentId: string;
  backupId: string;
  targetId: string;
  storageId: string;
  /** The storage profile's key prefix. */
  storagePrefix: string;
  dbType: string;
  dbName: string;
  /** When the run began as the control plane knows it (the command was created, or the run announced). */
  startedAfter: Date;
  /** The key-encryption key the command named (scheduled runs: any the control plane holds). */
  kekId?: string;
}

/** How far an agent's clock may be off when its reported times are compared with ours. */
const CLOCK_SLACK_MS = 10 * 60_000;

/**
 * Where a backup's data object must live:
 * `{storage prefix}/{env}/{agent}/{dbtype}/{dbname}/{yyyy}/{MM}/{filename}`, every
 * segment a safe name, the type and database those of the target, the file name
 * ending in the backup's own id.
 */
export function objectKeyProblem(
  objectKey: string,
  metaKey: string,
  filename: string,
  e: Pick<ExpectedBackup, 'storagePrefix' | 'dbType' | 'dbName' | 'backupId'>,
): string | undefined {
  const root = joinKey(e.storagePrefix, '');
  if (root && !objectKey.startsWith(`${root}/`))
    return `objectKey ${objectKey} is not under the storage prefix ${root}/`;
  const rel = root ? objectKey.slice(root.length + 1) : objectKey;
  const parts = rel.split('/');
  if (parts.length !== 7 || parts.some((p) => !/^[A-Za-z0-9_.-]+$/.test(p) || p === '.' || p === '..'))
    return `objectKey ${objectKey} is not {env}/{agent}/{dbtype}/{dbname}/{yyyy}/{MM}/{filename}`;
  if (parts[2] !== safeSegment(e.dbType) || parts[3] !== safeSegment(e.dbName))
    return `objectKey ${objectKey} is not in the folder of ${e.dbType} database ${e.dbName}`;
  if (parts[6] !== filename) return `objectKey ${objectKey} does not end with the file name ${filename}`;
  if (!filename.includes(`_${backupFileId(e.backupId)}.`))
    return `file name ${filename} does not carry the backup's id`;
  if (metaKey !== `${objectKey}.meta.json`) return `metaKey ${metaKey} is not ${objectKey}.meta.json`;
  return undefined;
}

/**
 * Parse a backup result with its schema and check it against what was assigned:
 * the backup id, agent, target and engine; the object key; the key-encryption key;
 * the data key's binding to this backup; the times; and that no other catalogue
 * entry already holds the object or the id.
 */
export async function checkBackupResult(db: Db, result: unknown, e: ExpectedBackup): Promise<BackupResult> {
  const parsed = BackupResult.safeParse(result);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    reject(`backup result does not parse: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? ''}`);
  }
  const r = parsed.data;
  const m = r.meta;
  const same = (what: string, got: string, want: string) => {
    if (got !== want) reject(`backup result names ${what} ${got}, but this run is of ${what} ${want}`);
  };
  same('backup', m.backupId, e.backupId);
  same('agent', m.agentId, e.agentId);
  same('target', m.targetId, e.targetId);
  same('engine', m.dbType, e.dbType);
  const keyProblem = objectKeyProblem(m.objectKey, r.metaKey, m.filename, e);
  if (keyProblem) reject(keyProblem);
  if (e.kekId && m.kekId !== e.kekId) reject(`the data key is wrapped to ${m.kekId}, not ${e.kekId}`);
  const kek = await db
    .selectFrom('keys')
    .select(['kid', 'private_enc'])
    .where('kid', '=', m.kekId)
    .where('purpose', '=', 'kek')
    .executeTakeFirst();
  if (!kek) reject(`the data key is wrapped to an unknown key-encryption key ${m.kekId}`);
  if (!kek.private_enc)
    reject(`the data key is wrapped to ${m.kekId}, which was retired: this backup could never be opened`);
  const header = jweProtectedHeader(m.wrappedKey);
  if (header?.kid !== m.kekId)
    reject('the wrapped data key does not name the key-encryption key of the metadata');
  const binding = keyBindingProblem(header, { bid: e.backupId, aid: e.agentId, tid: e.targetId });
  if (binding) reject(binding);
  const start = Date.parse(m.startTime);
  const end = Date.parse(m.endTime);
  if (!Number.isFinite(start) || !Number.isFinite(end) || end < start)
    reject(`backup times ${m.startTime} – ${m.endTime} are not a time span`);
  if (start < e.startedAfter.getTime() - CLOCK_SLACK_MS)
    reject(`backup says it started at ${m.startTime}, before this run began`);
  if (end > Date.now() + CLOCK_SLACK_MS) reject(`backup says it ended at ${m.endTime}, in the future`);
  const clash = await db
    .selectFrom('backups')
    .select(['id', 'agent_id'])
    .where((eb) =>
      eb.or([
        eb('id', '=', m.backupId),
        eb.and([eb('storage_id', '=', e.storageId), eb('object_key', '=', m.objectKey)]),
      ]),
    )
    .execute();
  if (clash.some((c) => c.id !== m.backupId || c.agent_id !== e.agentId))
    reject(`the catalogue already holds ${m.objectKey} or backup ${m.backupId} for another backup`);
  return r;
}
