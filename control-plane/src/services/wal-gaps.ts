import type { Db } from '../db/database.js';
import { fireAlert, resolveAlert } from './alerts.js';
import { recoveryWindow } from './recovery-window.js';

/**
 * A chain check finished: the files it found missing or corrupt (only names it was asked
 * about count) leave the index, and the gap alert follows the recovery window.
 */
export async function walVerifyFinished(
  tx: Db,
  job: { id: string; state: string; target_id: string | null; params: unknown; result: unknown },
) {
  if (job.state !== 'succeeded' || !job.target_id) return;
  const asked = new Set(
    ((job.params as { names?: string[] } | null)?.names ?? []).filter((n) => typeof n === 'string'),
  );
  const r = job.result as { missing?: unknown; corrupt?: unknown } | null;
  const names = [
    ...(Array.isArray(r?.missing) ? r.missing : []),
    ...(Array.isArray(r?.corrupt) ? r.corrupt.map((c) => (c as { name?: unknown })?.name) : []),
  ].filter((n): n is string => typeof n === 'string' && asked.has(n));
  if (names.length)
    await tx
      .updateTable('wal_files')
      .set({ deleted_at: new Date() })
      .where('target_id', '=', job.target_id)
      .where('name', 'in', names)
      .where('deleted_at', 'is', null)
      .execute();
  await refreshWalGap(tx, job.target_id);
}

/** wal_gap fires while the archive after the oldest base backup has a hole, and is resolved when it has none. */
export async function refreshWalGap(db: Db, targetId: string) {
  const w = await recoveryWindow(db, targetId);
  const subject = `target:${targetId}`;
  if (!w.gaps.length) {
    await resolveAlert(db, 'wal_gap', subject);
    return;
  }
  const t = await db.selectFrom('targets').select('name').where('id', '=', targetId).executeTakeFirst();
  const g = w.gaps[0]!;
  await fireAlert(db, {
    kind: 'wal_gap',
    subject,
    targetId,
    message: `the WAL archive of ${t?.name ?? targetId} is missing ${g.missingFrom}${g.missingTo !== g.missingFrom ? ` to ${g.missingTo}` : ''}: points after ${g.restorableUntil?.toISOString() ?? 'it'} cannot be restored until a new base backup is taken`,
    details: { gaps: w.gaps },
  });
}
