import { z } from 'zod';

/**
 * A retention policy: keep the last N, keep D days, and grandfather-father-son
 * counts, combinable (a backup is kept if any rule keeps it). An empty policy
 * keeps everything.
 */
export const RetentionPolicy = z
  .object({
    keepLast: z.number().int().min(1).max(100_000).optional(),
    keepDays: z.number().int().min(1).max(36_500).optional(),
    daily: z.number().int().min(1).max(10_000).optional(),
    weekly: z.number().int().min(1).max(10_000).optional(),
    monthly: z.number().int().min(1).max(10_000).optional(),
    yearly: z.number().int().min(1).max(1_000).optional(),
  })
  .strict();
export type RetentionPolicy = z.infer<typeof RetentionPolicy>;

export interface RetentionCandidate {
  id: string;
  /** When the backup started, as recorded in its metadata (never parsed from a name). */
  startedAt: string;
  /** Committed (meta.json status completed) and not failed by a verify. */
  good: boolean;
}

export interface RetentionDecision {
  keep: { id: string; reasons: string[] }[];
  delete: { id: string; reason: string }[];
}

const DAY = 86_400_000;

/** ISO-8601 week (UTC) as "YYYY-Www". */
function isoWeek(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - day);
  const year = t.getUTCFullYear();
  const week = Math.ceil(((t.getTime() - Date.UTC(year, 0, 1)) / DAY + 1) / 7);
  return `${year}-W${String(week).padStart(2, '0')}`;
}

const buckets: [keyof RetentionPolicy, string, (d: Date) => string][] = [
  ['daily', 'daily', (d) => d.toISOString().slice(0, 10)],
  ['weekly', 'weekly', isoWeek],
  ['monthly', 'monthly', (d) => d.toISOString().slice(0, 7)],
  ['yearly', 'yearly', (d) => d.toISOString().slice(0, 4)],
];

/**
 * Which backups a policy keeps and which it deletes, and why. Pure: the same
 * input always gives the same answer, whatever its order. Only good backups
 * count toward what is kept; a backup that is not good is deleted (it is not
 * a restore point). The newest good backup is never deleted. An empty policy
 * deletes nothing.
 */
export function selectRetention(
  backups: readonly RetentionCandidate[],
  policy: RetentionPolicy,
  now: Date,
): RetentionDecision {
  // Newest first by recorded time; the id breaks ties so that order never depends on input order.
  const sorted = [...backups].sort((a, b) => {
    const d = Date.parse(b.startedAt) - Date.parse(a.startedAt);
    return d !== 0 ? d : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  });
  const good = sorted.filter((b) => b.good && Number.isFinite(Date.parse(b.startedAt)));
  const reasons = new Map<string, string[]>();
  const keep = (id: string, why: string) => reasons.set(id, [...(reasons.get(id) ?? []), why]);
  const empty = Object.values(policy).every((v) => v === undefined);

  if (empty) return { keep: sorted.map((b) => ({ id: b.id, reasons: ['no retention policy'] })), delete: [] };
  if (policy.keepLast) {
    const n = policy.keepLast;
    good.slice(0, n).forEach((b, i) => {
      keep(b.id, `keepLast ${i + 1}/${n}`);
    });
  }
  if (policy.keepDays) {
    const from = now.getTime() - policy.keepDays * DAY;
    for (const b of good)
      if (Date.parse(b.startedAt) >= from) keep(b.id, `within keepDays ${policy.keepDays}`);
  }
  for (const [key, label, bucketOf] of buckets) {
    const n = policy[key];
    if (!n) continue;
    const seen = new Set<string>();
    for (const b of good) {
      const k = bucketOf(new Date(b.startedAt));
      if (seen.has(k)) continue;
      if (seen.size >= n) break;
      seen.add(k);
      keep(b.id, `${label} ${k}`);
    }
  }
  // The newest good backup always stays, whatever the policy says.
  if (good[0] && !reasons.has(good[0].id)) keep(good[0].id, 'newest good backup');

  const out: RetentionDecision = { keep: [], delete: [] };
  for (const b of sorted) {
    const why = reasons.get(b.id);
    if (why) out.keep.push({ id: b.id, reasons: why });
    else
      out.delete.push({
        id: b.id,
        reason: b.good
          ? 'not kept by any rule of the policy'
          : 'not a good backup (failed or failed verification)',
      });
  }
  return out;
}

/**
 * An operator's deletion of one backup, as a retention decision: that backup goes and every
 * other stays; refused (a reason in words) when it is the newest good backup of its target,
 * the same rule retention never breaks, or when it is not among the backups given.
 */
export function selectOne(
  backups: readonly RetentionCandidate[],
  id: string,
  reason: string,
): RetentionDecision | { refused: string } {
  if (!backups.some((b) => b.id === id)) return { refused: `backup ${id} is not among the target's backups` };
  const newestGood = [...backups]
    .filter((b) => b.good && Number.isFinite(Date.parse(b.startedAt)))
    .sort((a, b) => Date.parse(b.startedAt) - Date.parse(a.startedAt) || (a.id < b.id ? -1 : 1))[0];
  if (newestGood?.id === id)
    return {
      refused:
        'it is the newest good backup of its target, which is never deleted; take a newer backup first',
    };
  return {
    keep: backups
      .filter((b) => b.id !== id)
      .map((b) => ({ id: b.id, reasons: ['not the backup asked for'] })),
    delete: [{ id, reason }],
  };
}
