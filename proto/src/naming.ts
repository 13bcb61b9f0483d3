export const safeSegment = (s: string) => s.replace(/[^A-Za-z0-9_.-]+/g, '_').replace(/^[._]+/, '') || 'x';
const pad = (n: number) => String(n).padStart(2, '0');

/**
 * `{env}/{agent}/{dbtype}/{dbname}/{yyyy}/{MM}/{app}_{dbtype}_{dbname}_{yyyyMMdd}T{HHmmss}Z_{id}.{ext}`
 * (the storage profile's prefix goes in front). Every component is reduced to
 * [A-Za-z0-9_.-] so a name can never climb out of its folder.
 */
export function backupObjectPath(o: {
  env: string;
  agentName: string;
  dbType: string;
  dbName: string;
  app: string;
  at: Date;
  id: string;
  ext: string;
}): { relative: string; filename: string } {
  const d = o.at;
  const date = `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}`;
  const time = `${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`;
  const filename = `${safeSegment(o.app)}_${safeSegment(o.dbType)}_${safeSegment(o.dbName)}_${date}T${time}Z_${safeSegment(o.id)}.${o.ext}`;
  const relative = [
    safeSegment(o.env),
    safeSegment(o.agentName),
    safeSegment(o.dbType),
    safeSegment(o.dbName),
    String(d.getUTCFullYear()),
    pad(d.getUTCMonth() + 1),
    filename,
  ].join('/');
  return { relative, filename };
}

/** `{env}/{agent}/{dbtype}/{dbname}/`: where every backup of one database of one agent lives. */
export function backupTargetPrefix(o: {
  env: string;
  agentName: string;
  dbType: string;
  dbName: string;
}): string {
  return `${[safeSegment(o.env), safeSegment(o.agentName), safeSegment(o.dbType), safeSegment(o.dbName)].join('/')}/`;
}

/** A storage prefix and a relative key joined with single slashes. */
export function joinKey(prefix: string, relative: string): string {
  return [prefix.replace(/^\/+|\/+$/g, ''), relative.replace(/^\/+/, '')].filter(Boolean).join('/');
}

/** The id part of a backup's file name: the first 12 hex digits of its UUID. */
export function backupFileId(backupId: string): string {
  return backupId.replace(/-/g, '').slice(0, 12);
}

/**
 * `{env}/{agent}/postgresql-wal/{target}/{timeline}/{walfile}_{upload}.zst.enc`: one archived
 * WAL file, beside its `.meta.json`. Apart from the backups' prefix (a retention run or an
 * orphan sweep over `…/postgresql/…` never sees WAL). `upload` tells apart two uploads of
 * the same file (after a crash between upload and report): neither overwrites the other.
 */
export function walObjectPath(o: {
  env: string;
  agentName: string;
  targetName: string;
  name: string;
  upload: string;
}) {
  return `${walTargetPrefix(o)}${o.name.slice(0, 8)}/${o.name}_${safeSegment(o.upload)}.zst.enc`;
}

/** Where every archived WAL file of one physical target lives. */
export function walTargetPrefix(o: { env: string; agentName: string; targetName: string }): string {
  return `${[safeSegment(o.env), safeSegment(o.agentName), 'postgresql-wal', safeSegment(o.targetName)].join('/')}/`;
}
