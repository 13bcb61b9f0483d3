import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type RetentionCandidate, type RetentionPolicy, selectOne, selectRetention } from './retention.js';

const NOW = new Date('2026-11-21T12:00:00Z');
const DAY = 86_400_000;

const candidate = fc.record({
  id: fc.uuid(),
  startedAt: fc.integer({ min: 0, max: 900 * DAY }).map((ago) => new Date(NOW.getTime() - ago).toISOString()),
  good: fc.boolean(),
});
const candidates = fc.uniqueArray(candidate, { selector: (c) => c.id, maxLength: 60 });
const policy: fc.Arbitrary<RetentionPolicy> = fc.record(
  {
    keepLast: fc.integer({ min: 1, max: 20 }),
    keepDays: fc.integer({ min: 1, max: 400 }),
    daily: fc.integer({ min: 1, max: 14 }),
    weekly: fc.integer({ min: 1, max: 8 }),
    monthly: fc.integer({ min: 1, max: 12 }),
    yearly: fc.integer({ min: 1, max: 3 }),
  },
  { requiredKeys: [] },
);

const keptIds = (bs: RetentionCandidate[], p: RetentionPolicy) =>
  selectRetention(bs, p, NOW)
    .keep.map((k) => k.id)
    .sort();

describe('retention selection (property-based)', () => {
  it('every backup is either kept or deleted, once', () => {
    fc.assert(
      fc.property(candidates, policy, (bs, p) => {
        const d = selectRetention(bs, p, NOW);
        const ids = [...d.keep.map((k) => k.id), ...d.delete.map((x) => x.id)].sort();
        expect(ids).toEqual(bs.map((b) => b.id).sort());
      }),
    );
  });

  it('never deletes the newest good backup', () => {
    fc.assert(
      fc.property(candidates, policy, (bs, p) => {
        const good = bs
          .filter((b) => b.good)
          .sort((a, b) => Date.parse(b.startedAt) - Date.parse(a.startedAt));
        fc.pre(good.length > 0);
        const newest = good.filter((g) => g.startedAt === good[0]!.startedAt).map((g) => g.id);
        const deleted = new Set(selectRetention(bs, p, NOW).delete.map((x) => x.id));
        expect(newest.some((id) => !deleted.has(id))).toBe(true);
      }),
    );
  });

  it('failed or unverified backups never count toward what is kept', () => {
    fc.assert(
      fc.property(candidates, policy, fc.array(candidate, { maxLength: 10 }), (bs, p, extra) => {
        const bad = extra.map((e, i) => ({ ...e, id: `bad-${i}`, good: false }));
        const goodKeptBefore = keptIds(bs, p).filter((id) => bs.find((b) => b.id === id)?.good);
        const goodKeptAfter = keptIds([...bs, ...bad], p).filter((id) => bs.find((b) => b.id === id)?.good);
        expect(goodKeptAfter).toEqual(goodKeptBefore);
      }),
    );
  });

  it('order comes from recorded times, not from names or input order', () => {
    fc.assert(
      fc.property(candidates, policy, fc.integer(), (bs, p, seed) => {
        const shuffled = [...bs].sort(
          (a, b) => ((a.id.charCodeAt(seed & 7) ^ seed) & 1) - ((b.id.charCodeAt(seed & 7) ^ seed) & 1),
        );
        // Renaming every backup (names sort the other way) keeps the same decisions by position in time.
        const renamed = bs.map((b, i) => ({ ...b, id: `zz-${String(1000 - i).padStart(4, '0')}` }));
        const byTime = (list: RetentionCandidate[]) =>
          selectRetention(list, p, NOW)
            .keep.map((k) => list.find((b) => b.id === k.id)!.startedAt)
            .sort();
        expect(keptIds(shuffled, p)).toEqual(keptIds(bs, p));
        if (new Set(bs.map((b) => b.startedAt)).size === bs.length)
          expect(byTime(renamed)).toEqual(byTime(bs));
      }),
    );
  });

  it('is deterministic', () => {
    fc.assert(
      fc.property(candidates, policy, (bs, p) => {
        expect(selectRetention(bs, p, NOW)).toEqual(selectRetention(structuredClone(bs), { ...p }, NOW));
      }),
    );
  });

  it('keepLast alone keeps exactly the N newest good backups', () => {
    fc.assert(
      fc.property(candidates, fc.integer({ min: 1, max: 10 }), (bs, n) => {
        fc.pre(new Set(bs.map((b) => b.startedAt)).size === bs.length);
        const expected = bs
          .filter((b) => b.good)
          .sort((a, b) => Date.parse(b.startedAt) - Date.parse(a.startedAt))
          .slice(0, n)
          .map((b) => b.id)
          .sort();
        expect(keptIds(bs, { keepLast: n })).toEqual(expected);
      }),
    );
  });

  it('an empty policy deletes nothing; GFS keeps one per period', () => {
    const bs: RetentionCandidate[] = [
      { id: 'a', startedAt: '2026-11-21T10:00:00Z', good: true },
      { id: 'b', startedAt: '2026-11-21T02:00:00Z', good: true },
      { id: 'c', startedAt: '2026-11-20T02:00:00Z', good: true },
      { id: 'd', startedAt: '2026-10-31T02:00:00Z', good: true },
      { id: 'e', startedAt: '2026-11-19T02:00:00Z', good: false },
    ];
    expect(selectRetention(bs, {}, NOW).delete).toEqual([]);
    const d = selectRetention(bs, { daily: 2, monthly: 2 }, NOW);
    expect(d.keep.map((k) => k.id)).toEqual(['a', 'c', 'd']);
    expect(d.delete).toEqual([
      { id: 'b', reason: 'not kept by any rule of the policy' },
      { id: 'e', reason: 'not a good backup (failed or failed verification)' },
    ]);
  });
});

describe('selectOne: an operator deletes one backup', () => {
  const candidates = fc.uniqueArray(candidate, { minLength: 1, maxLength: 30, selector: (c) => c.id });

  it('never deletes the newest good backup; otherwise deletes exactly the one asked for and keeps every other', () => {
    fc.assert(
      fc.property(candidates, fc.nat(), (bs, i) => {
        const asked = bs[i % bs.length]!;
        const d = selectOne(bs, asked.id, 'asked');
        const policy = selectRetention(bs, { keepLast: 1 }, NOW);
        // selectRetention keeps the newest good backup whatever the policy: the same one is refused here.
        const newestGood = policy.keep.find((k) => k.reasons.includes('keepLast 1/1'))?.id;
        if (asked.id === newestGood) return 'refused' in d;
        if ('refused' in d) return false;
        return (
          d.delete.length === 1 &&
          d.delete[0]!.id === asked.id &&
          d.keep.length === bs.length - 1 &&
          !d.keep.some((k) => k.id === asked.id)
        );
      }),
    );
  });

  it('refuses an id that is not among the backups', () => {
    expect(selectOne([{ id: 'a', startedAt: NOW.toISOString(), good: true }], 'zzz', 'x')).toEqual({
      refused: "backup zzz is not among the target's backups",
    });
  });
});
