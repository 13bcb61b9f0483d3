import { TargetSpec } from '@dbbackup/proto';
import type { Db } from '../db/database.js';
import { notFound } from '../problem.js';

/** A target row as the wire's TargetSpec. */
export function targetSpecFromRow(row: {
  id: string;
  engine: string;
  name: string;
  connection: unknown;
  secret_ref: unknown;
  options: unknown;
}) {
  return TargetSpec.parse({
    id: row.id,
    engine: row.engine,
    name: row.name,
    connection: row.connection,
    secretRef: row.secret_ref,
    options: row.options,
  });
}

export async function targetSpecFor(db: Db, targetId: string) {
  const row = await db.selectFrom('targets').selectAll().where('id', '=', targetId).executeTakeFirst();
  if (!row) throw notFound('target');
  return { row, spec: targetSpecFromRow(row) };
}
