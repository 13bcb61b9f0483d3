import type { TargetSpec } from '@dbbackup/proto';
import pg from 'pg';
import { AgentError } from '../agent-error.js';
import { client, libpqEnv, serverInfo } from './postgres-client.js';

/** What a physical backup and WAL archiving need from the server, read once per job. */
export interface ClusterFacts {
  major: number;
  version: string;
  versionNum: number;
  systemIdentifier: string;
  timeline: number;
  walSegmentBytes: number;
  /** The server's data directory, when the role may read it (superuser or pg_read_all_settings). */
  dataDirectory: string | undefined;
  totalBytes: number;
  /** Whether the server summarizes WAL (PostgreSQL 17's summarize_wal), which incremental backups need. */
  summarizeWal: boolean;
}

const CHECK_SQL = `
  SELECT current_setting('server_version_num') AS num,
         current_setting('server_version') AS version,
         current_setting('wal_level') AS wal_level,
         current_setting('max_wal_senders')::int AS max_wal_senders,
         (SELECT setting::bigint * CASE unit WHEN 'MB' THEN 1048576 WHEN 'kB' THEN 1024 ELSE 1 END
            FROM pg_settings WHERE name = 'wal_segment_size') AS wal_segment_bytes,
         (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user) AS can_replicate,
         current_user AS role,
         (SELECT string_agg(spcname, ', ') FROM pg_tablespace
           WHERE spcname NOT IN ('pg_default', 'pg_global')) AS tablespaces,
         (SELECT sum(pg_database_size(oid))::bigint FROM pg_database WHERE datallowconn) AS total_bytes,
         (SELECT system_identifier::text FROM pg_control_system()) AS sysid,
         (SELECT timeline_id FROM pg_control_checkpoint()) AS timeline,
         current_setting('summarize_wal', true) AS summarize_wal,
         CASE WHEN pg_has_role(current_user, 'pg_read_all_settings', 'MEMBER')
              THEN current_setting('data_directory') END AS data_directory`;

type Row = {
  num: string;
  version: string;
  wal_level: string;
  max_wal_senders: number;
  wal_segment_bytes: string;
  can_replicate: boolean;
  role: string;
  tablespaces: string | null;
  total_bytes: string;
  sysid: string;
  timeline: number;
  data_directory: string | null;
  summarize_wal: string | null;
};

/**
 * Check, over an ordinary connection and then a replication connection, everything a
 * physical backup and WAL archiving need, and explain each missing piece with the
 * exact fix. Throws an AgentError ('prerequisite') listing all of them.
 */
export async function checkPhysicalPrerequisites(t: TargetSpec): Promise<ClusterFacts> {
  const cl = await client(t);
  let row: Row;
  try {
    await serverInfo(cl);
    row = (await cl.query<Row>(CHECK_SQL)).rows[0]!;
  } finally {
    await cl.end().catch(() => {});
  }
  const problems: string[] = [];
  if (row.wal_level === 'minimal')
    problems.push(
      "wal_level is 'minimal': run ALTER SYSTEM SET wal_level = 'replica'; and restart PostgreSQL",
    );
  if (row.max_wal_senders < 2)
    problems.push(
      `max_wal_senders is ${row.max_wal_senders} (the archiver and a base backup need 2): run ALTER SYSTEM SET max_wal_senders = 10; and restart PostgreSQL`,
    );
  if (!row.can_replicate)
    problems.push(
      `role ${row.role} may not replicate: run ALTER ROLE ${pg.escapeIdentifier(row.role)} REPLICATION;`,
    );
  if (row.tablespaces)
    problems.push(
      `this cluster has tablespaces outside its data directory (${row.tablespaces}): physical backups of those are not supported; move them to pg_default or back this database up logically`,
    );
  if (!problems.length) {
    const replication = await replicationProblem(t, row.role);
    if (replication) problems.push(replication);
  }
  if (problems.length)
    throw new AgentError('prerequisite', `physical backup prerequisites: ${problems.join('; ')}`);
  const num = Number(row.num);
  return {
    major: Math.floor(num / 10000),
    version: row.version,
    versionNum: num,
    systemIdentifier: row.sysid,
    timeline: Number(row.timeline),
    walSegmentBytes: Number(row.wal_segment_bytes),
    dataDirectory: row.data_directory ?? undefined,
    totalBytes: Number(row.total_bytes),
    summarizeWal: row.summarize_wal === 'on',
  };
}

/** Whether pg_hba.conf lets this role open a replication connection: the fix when it does not. */
async function replicationProblem(t: TargetSpec, role: string): Promise<string | undefined> {
  const env = libpqEnv(t);
  const c = t.connection;
  const cl = new pg.Client({
    host: c.host ?? '/var/run/postgresql',
    port: c.port ?? 5432,
    database: 'replication',
    user: c.user ?? process.env.USER ?? 'postgres',
    ...(env.PGPASSWORD ? { password: env.PGPASSWORD } : {}),
    connectionTimeoutMillis: 10_000,
    application_name: 'dbbackup',
    replication: 'true',
  } as pg.ClientConfig);
  cl.on('error', () => {});
  try {
    await cl.connect();
    await cl.query('IDENTIFY_SYSTEM');
    return undefined;
  } catch (err) {
    const from = c.host?.startsWith('/') || !c.host ? 'local' : `host    replication ${role} ${c.host}/32`;
    const line = from === 'local' ? `local   replication ${role} peer` : `${from} scram-sha-256`;
    return `a replication connection was refused (${(err as Error).message}): add "${line}" to pg_hba.conf and run SELECT pg_reload_conf();`;
  } finally {
    await cl.end().catch(() => {});
  }
}
