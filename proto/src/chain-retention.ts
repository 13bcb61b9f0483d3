import type { RetentionPolicy } from './retention.js';
import { chainAncestors, parseLsn, segmentName, segmentOf } from './wal.js';

/**
 * Retention of a physical target's chain, the same on the agent (which applies it to what the
 * storage holds) and the control plane (whose preview applies it to the catalogue): the base
 * backups recovery points need, and the WAL nobody needs.
 */
export interface ChainBackup {
  backupId: string;
  startTime: string;
  engineMeta?: Record<string, string> | undefined;
}

const DAY = 86_400_000;
const isBase = (m: ChainBackup) => m.engineMeta?.kind === 'physical' && !!m.engineMeta.startLsn;

/**
 * With keepDays, every point of the last keepDays days must stay restorable: the newest
 * good base backup taken before that boundary is kept too (it is what restores the points
 * between the boundary and the next base backup).
 */
export function chainKeep<T extends ChainBackup>(
  metas: T[],
  good: (m: T) => boolean,
  policy: RetentionPolicy,
  now: Date,
): string | undefined {
  if (!policy.keepDays) return undefined;
  const from = now.getTime() - policy.keepDays * DAY;
  return metas
    .filter((m) => isBase(m) && good(m) && Date.parse(m.startTime) < from)
    .sort((a, b) => Date.parse(b.startTime) - Date.parse(a.startTime))[0]?.backupId;
}

/** The first WAL segment the oldest remaining base backup needs (undefined: no base backup left). */
export function firstNeededSegment(remaining: ChainBackup[]): string | undefined {
  const names = remaining.filter(isBase).map((m) => {
    const e = m.engineMeta!;
    const bytes = Number(e.walSegmentBytes);
    return segmentName(Number(e.timeline), segmentOf(parseLsn(e.startLsn!), bytes), bytes);
  });
  return names.sort()[0];
}

/**
 * Why a backup the policy would delete stays anyway, or undefined: it is the base backup the
 * points within keepDays start from, the newest backup a drill proved (`drillKeep`), or a
 * base backup a kept incremental one is built on.
 */
export function chainGuard<T extends ChainBackup>(o: {
  metas: T[];
  good: (m: T) => boolean;
  policy: RetentionPolicy;
  now: Date;
  /** What the policy keeps. */
  kept: string[];
  drillKeep?: ReadonlySet<string> | undefined;
}): (id: string) => string | undefined {
  const coverBoundary = chainKeep(o.metas, o.good, o.policy, o.now);
  const builtOn = chainAncestors(o.metas, [
    ...o.kept,
    ...(coverBoundary ? [coverBoundary] : []),
    ...(o.drillKeep ?? []),
  ]);
  return (id) => {
    if (id === coverBoundary) return 'the base backup recovery points within keepDays start from';
    if (o.drillKeep?.has(id)) return 'the newest backup a drill proved (a newer one failed its drill)';
    if (builtOn.has(id)) return 'a kept incremental base backup is built on it';
    return undefined;
  };
}
