import type { Context } from 'hono';
import { type SelectQueryBuilder, sql } from 'kysely';
import { z } from 'zod';
import type { Database } from '../db/schema.js';
import { badRequest, invalidQuery } from '../problem.js';

/**
 * Keyset paging for the lists that grow (agents, targets, jobs, backups, commands, events):
 * `?limit=` (1–1000) and `?cursor=` (opaque: the last item's sort key), answered with
 * `nextCursor` (null on the last page). Pages are stable while rows are added: the cursor
 * names a position in the order, not an offset.
 */
const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  cursor: z.string().min(1).max(200).optional(),
});

/** A position in a list: the sort column's value (an ISO time or a number) and the row id. */
type Key = { k: string | number; id: string };

export interface Page {
  limit: number;
  after: Key | undefined;
}

const encode = (key: Key) => Buffer.from(JSON.stringify([key.k, key.id])).toString('base64url');

function decode(cursor: string): Key {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (
      Array.isArray(v) &&
      v.length === 2 &&
      (typeof v[0] === 'string' || typeof v[0] === 'number') &&
      typeof v[1] === 'string' &&
      v[1].length <= 64
    )
      return { k: v[0], id: v[1] };
  } catch {}
  throw badRequest('cursor: not a cursor this API gave out; start again without it', { field: 'cursor' });
}

/** The page a request asks for (`defaultLimit` when it names none). */
export function pageOf(c: Context, defaultLimit: number): Page {
  const q = PageQuery.safeParse({ limit: c.req.query('limit'), cursor: c.req.query('cursor') });
  if (!q.success) throw invalidQuery(q.error);
  return { limit: q.data.limit ?? defaultLimit, after: q.data.cursor ? decode(q.data.cursor) : undefined };
}

type Query<T extends keyof Database, O> = SelectQueryBuilder<Database, T, O>;

/**
 * Order `q` by (`column`, id) in `direction`, start after the page's cursor, and fetch one
 * more row than the page holds (to know whether another page follows). A time column is
 * compared at millisecond precision, the precision a cursor carries.
 */
export function keyset<T extends keyof Database, O>(
  q: Query<T, O>,
  column: { time: string } | { number: string },
  direction: 'asc' | 'desc',
  page: Page,
  idColumn = 'id',
): Query<T, O> {
  const col =
    'time' in column
      ? sql`date_trunc('milliseconds', ${sql.ref(column.time)})`
      : sql`${sql.ref(column.number)}`;
  let out = q;
  if (page.after) {
    const k = 'time' in column ? new Date(page.after.k) : Number(page.after.k);
    if (typeof k === 'number' ? !Number.isFinite(k) : Number.isNaN(k.getTime()))
      throw badRequest('cursor: not a cursor this API gave out; start again without it', { field: 'cursor' });
    const cmp = direction === 'asc' ? sql`>` : sql`<`;
    out = out.where(
      sql<boolean>`(${col}, ${sql.ref(idColumn)}::text) ${cmp} (${k}, ${page.after.id})`,
    ) as Query<T, O>;
  }
  return out
    .orderBy(col, direction)
    .orderBy(sql`${sql.ref(idColumn)}::text`, direction)
    .limit(page.limit + 1) as Query<T, O>;
}

/** The page's items and the cursor of the next page (null: this is the last). */
export function paged<R>(rows: R[], page: Page, keyOf: (row: R) => Key) {
  const items = rows.slice(0, page.limit);
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > page.limit && last ? encode(keyOf(last)) : null };
}

/** A row's sort key from a time column. */
export const timeKey = (at: Date | string, id: string): Key => ({ k: new Date(at).toISOString(), id });
