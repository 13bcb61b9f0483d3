import {
  archivesWal,
  joinKey,
  jweProtectedHeader,
  keyBindingProblem,
  parseSegmentName,
  safeSegment,
  validSegmentBytes,
  WAL_SEGMENT_NAME,
  type WalArchived,
  type WalPruned,
  type WalStatus,
  walKeyId,
} from '@dbbackup/proto';
import type { Db } from '../db/database.js';
import { reject } from './agent-reports.js';
import { fireAlert, resolveAlert } from './alerts.js';
import { targetSpecFromRow } from './target-specs.js';
import { refreshWalGap } from './wal-gaps.js';

/** How far an agent's clock may be off when its reported times are compared with ours. */
const CLOCK_SLACK_MS = 10 * 60_000;

/** The physical target an archiving event is about, if it is this agent's and archives WAL. */
async function archivingTarget(db: Db, agentId: string, targetId: string) {
  const row = await db.selectFrom('targets').selectAll().where('id', '=', targetId).executeTakeFirst();
  if (!row || row.agent_id !== agentId) reject(`target ${targetId} is not a target of this agent`);
  const spec = targetSpecFromRow(row);
  if (!archivesWal(spec)) reject(`target ${row.name} does not archive WAL (options.physical is not set)`);
  return row;
}

/**
 * Where an archived WAL file must live: under the WAL storage's prefix,
 * `{env}/{agent}/postgresql-wal/{target}/{timeline}/{name}_{upload}.zst.enc`.
 */
function walKeyProblem(objectKey: string, storagePrefix: string, targetName: string, name: string) {
  const root = joinKey(storagePrefix, '');
  if (root && !objectKey.startsWith(`${root}/`))
    return `objectKey ${objectKey} is not under the storage prefix ${root}/`;
  const parts = (root ? objectKey.slice(root.length + 1) : objectKey).split('/');
  if (parts.length !== 6 || parts.some((p) => !/^[A-Za-z0-9_.-]+$/.test(p) || p === '.' || p === '..'))
    return `objectKey ${objectKey} is not {env}/{agent}/postgresql-wal/{target}/{timeline}/{file}`;
  if (parts[2] !== 'postgresql-wal' || parts[3] !== safeSegment(targetName) || parts[4] !== name.slice(0, 8))
    return `objectKey ${objectKey} is not in the WAL folder of target ${targetName}`;
  if (!new RegExp(`^${name.replace('.', '\\.')}_[0-9a-f]{8}\\.zst\\.enc$`).test(parts[5]!))
    return `objectKey ${objectKey} is not a stored copy of ${name}`;
  return undefined;
}

/**
 * An archived WAL file, checked against what this agent may report before it is indexed:
 * its own physical target, that target's storage and folder, a known key-encryption key,
 * a data key bound to this file, agent and target, and the cluster the target's WAL has
 * come from so far. A second report of the same file (an upload repeated after a crash)
 * keeps the first.
 */
export async function onWalArchived(db: Db, agentId: string, e: WalArchived) {
  const row = await archivingTarget(db, agentId, e.targetId);
  if (e.storageId !== row.storage_id)
    reject(`WAL of ${row.name} goes to its storage ${row.storage_id}, not ${e.storageId}`);
  if (!validSegmentBytes(e.segmentBytes)) reject(`${e.segmentBytes} is not a WAL segment size`);
  const storage = await db
    .selectFrom('storage_profiles')
    .select('config')
    .where('id', '=', row.storage_id)
    .executeTakeFirst();
  const prefix = String((storage?.config as { prefix?: string } | undefined)?.prefix ?? '');
  const keyProblem = walKeyProblem(e.objectKey, prefix, row.name, e.name);
  if (keyProblem) reject(keyProblem);
  const kek = await db
    .selectFrom('keys')
    .select(['kid', 'private_enc'])
    .where('kid', '=', e.kekId)
    .where('purpose', '=', 'kek')
    .executeTakeFirst();
  if (!kek?.private_enc)
    reject(`the data key is wrapped to ${e.kekId}, which this control plane cannot open`);
  const header = jweProtectedHeader(e.wrappedKey);
  if (header?.kid !== e.kekId) reject('the wrapped data key does not name the key-encryption key reported');
  const binding = keyBindingProblem(header, { bid: walKeyId(e.name), aid: agentId, tid: e.targetId });
  if (binding) reject(binding);
  const completed = Date.parse(e.completedAt);
  const archived = Date.parse(e.archivedAt);
  if (!Number.isFinite(completed) || !Number.isFinite(archived) || archived > Date.now() + CLOCK_SLACK_MS)
    reject(`WAL file times ${e.completedAt} / ${e.archivedAt} are not plausible`);
  const other = await db
    .selectFrom('wal_files')
    .select('system_identifier')
    .where('target_id', '=', e.targetId)
    .where('system_identifier', '!=', e.systemIdentifier)
    .limit(1)
    .executeTakeFirst();
  if (other)
    reject(
      `WAL from database system ${e.systemIdentifier}, but ${row.name}'s archive holds system ${other.system_identifier}: the cluster was replaced; create a new target for it`,
    );
  const seg = WAL_SEGMENT_NAME.test(e.name) ? parseSegmentName(e.name, e.segmentBytes) : undefined;
  if (WAL_SEGMENT_NAME.test(e.name) && !seg)
    reject(`${e.name} is not a segment name for ${e.segmentBytes}-byte segments`);
  await db
    .insertInto('wal_files')
    .values({
      target_id: e.targetId,
      name: e.name,
      timeline: Number.parseInt(e.name.slice(0, 8), 16),
      segno: seg ? Number(seg.segno) : null,
      agent_id: agentId,
      storage_id: e.storageId,
      object_key: e.objectKey,
      size_bytes: e.sizeBytes,
      sha256: e.sha256,
      wrapped_key: e.wrappedKey,
      kek_id: e.kekId,
      segment_bytes: e.segmentBytes,
      system_identifier: e.systemIdentifier,
      completed_at: new Date(completed),
      archived_at: new Date(archived),
    })
    .onConflict((oc) => oc.columns(['target_id', 'name']).doNothing())
    .execute();
  if (seg) await gapCheck(db, e.targetId, Number.parseInt(e.name.slice(0, 8), 16), Number(seg.segno));
}

/** A segment that does not follow the one before it opens a gap: the alert follows the window. */
async function gapCheck(db: Db, targetId: string, timeline: number, segno: number) {
  const prev = await db
    .selectFrom('wal_files')
    .select('segno')
    .where('target_id', '=', targetId)
    .where('timeline', '=', timeline)
    .where('segno', '<', segno)
    .where('deleted_at', 'is', null)
    .orderBy('segno', 'desc')
    .limit(1)
    .executeTakeFirst();
  if (prev && Number(prev.segno) !== segno - 1) await refreshWalGap(db, targetId);
}

/** The archiver's latest state; a reported error raises wal_archive_lag, a clean report resolves it. */
export async function onWalStatus(db: Db, agentId: string, s: WalStatus) {
  const row = await archivingTarget(db, agentId, s.targetId);
  const values = {
    agent_id: agentId,
    receiving: s.receiving,
    spool_files: s.spoolFiles,
    spool_bytes: s.spoolBytes,
    spool_limit_bytes: s.spoolLimitBytes,
    slot_retained_bytes: s.slotRetainedBytes,
    last_archived: s.lastArchived,
    error: s.error,
    reported_at: new Date(),
  };
  await db
    .insertInto('wal_status')
    .values({ target_id: s.targetId, ...values })
    .onConflict((oc) => oc.column('target_id').doUpdateSet(values))
    .execute();
  const nearlyFull = s.spoolLimitBytes > 0 && s.spoolBytes > s.spoolLimitBytes * 0.8;
  if (s.error || nearlyFull)
    await fireAlert(db, {
      kind: 'wal_archive_lag',
      subject: `target:${s.targetId}`,
      targetId: s.targetId,
      message: `WAL archiving of ${row.name} is behind: ${s.error ?? `the spool holds ${s.spoolBytes} of ${s.spoolLimitBytes} bytes`}`,
      details: { spoolBytes: s.spoolBytes, spoolLimitBytes: s.spoolLimitBytes, error: s.error },
    });
  else await resolveAlert(db, 'wal_archive_lag', `target:${s.targetId}`);
}

/** Retention on the agent removed WAL older than the oldest kept base backup: those files leave the index. */
export async function onWalPruned(db: Db, agentId: string, e: WalPruned) {
  await archivingTarget(db, agentId, e.targetId);
  await db
    .updateTable('wal_files')
    .set({ deleted_at: new Date() })
    .where('target_id', '=', e.targetId)
    .where('segno', 'is not', null)
    .where('name', '<', e.before)
    .where('deleted_at', 'is', null)
    .execute();
  await refreshWalGap(db, e.targetId);
}
