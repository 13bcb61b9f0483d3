import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';

/** Migrations live in code, in order; never edit one that has shipped, add the next. */
const migrations: Record<string, Migration> = {
  '0001_foundation': {
    async up(db: Kysely<unknown>) {
      await sql`
        CREATE TABLE settings (key text PRIMARY KEY, value jsonb NOT NULL);

        CREATE TABLE api_tokens (
          id uuid PRIMARY KEY,
          name text NOT NULL,
          role text NOT NULL CHECK (role IN ('admin','operator','viewer')),
          token_hash text NOT NULL UNIQUE,
          created_at timestamptz NOT NULL DEFAULT now(),
          last_used_at timestamptz,
          revoked_at timestamptz
        );

        CREATE TABLE agents (
          id uuid PRIMARY KEY,
          hostname text NOT NULL,
          agent_version text NOT NULL,
          labels jsonb NOT NULL DEFAULT '{}',
          signing_jwk jsonb NOT NULL,
          encryption_jwk jsonb,
          status text NOT NULL CHECK (status IN ('pending','online','offline','revoked')),
          enrolled_at timestamptz NOT NULL DEFAULT now(),
          last_seen_at timestamptz,
          connected_at timestamptz,
          facts jsonb,
          revoked_at timestamptz,
          last_event_seq bigint NOT NULL DEFAULT 0,
          config_version integer NOT NULL DEFAULT 0
        );

        CREATE TABLE enrollment_tokens (
          id uuid PRIMARY KEY,
          token_hash text NOT NULL UNIQUE,
          labels jsonb NOT NULL DEFAULT '{}',
          created_by uuid REFERENCES api_tokens(id),
          created_at timestamptz NOT NULL DEFAULT now(),
          expires_at timestamptz NOT NULL,
          used_at timestamptz,
          agent_id uuid REFERENCES agents(id)
        );

        CREATE TABLE agent_status_history (
          id bigserial PRIMARY KEY,
          agent_id uuid NOT NULL REFERENCES agents(id),
          status text NOT NULL,
          reason text NOT NULL,
          at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX agent_status_history_agent ON agent_status_history (agent_id, id DESC);

        CREATE TABLE agent_token_jtis (
          jti text PRIMARY KEY,
          agent_id uuid NOT NULL REFERENCES agents(id),
          expires_at timestamptz NOT NULL
        );
        CREATE INDEX agent_token_jtis_expiry ON agent_token_jtis (expires_at);

        CREATE TABLE commands (
          id uuid PRIMARY KEY,
          agent_id uuid NOT NULL REFERENCES agents(id),
          kind text NOT NULL,
          payload jsonb NOT NULL,
          state text NOT NULL CHECK (state IN
            ('queued','delivered','acknowledged','running','succeeded','failed','cancelled','expired')),
          created_by uuid REFERENCES api_tokens(id),
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          expires_at timestamptz NOT NULL,
          delivered_at timestamptz,
          acknowledged_at timestamptz,
          started_at timestamptz,
          finished_at timestamptz,
          deliveries integer NOT NULL DEFAULT 0,
          result jsonb,
          error jsonb
        );
        CREATE INDEX commands_pending ON commands (agent_id, created_at) WHERE state IN ('queued','delivered');

        CREATE TABLE agent_events (
          agent_id uuid NOT NULL REFERENCES agents(id),
          seq bigint NOT NULL,
          type text NOT NULL,
          body jsonb NOT NULL,
          received_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (agent_id, seq)
        );
      `.execute(db);
    },
  },
  '0002_backups': {
    async up(db: Kysely<unknown>) {
      await sql`
        CREATE TABLE keys (
          kid text PRIMARY KEY,
          purpose text NOT NULL CHECK (purpose IN ('kek')),
          public_jwk jsonb NOT NULL,
          private_enc text NOT NULL,
          active boolean NOT NULL DEFAULT true,
          created_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE storage_profiles (
          id uuid PRIMARY KEY,
          name text NOT NULL UNIQUE,
          kind text NOT NULL CHECK (kind IN ('s3','local')),
          config jsonb NOT NULL,
          secret_enc text,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE targets (
          id uuid PRIMARY KEY,
          agent_id uuid NOT NULL REFERENCES agents(id),
          engine text NOT NULL,
          name text NOT NULL,
          connection jsonb NOT NULL,
          secret_ref jsonb NOT NULL,
          options jsonb NOT NULL,
          storage_id uuid NOT NULL REFERENCES storage_profiles(id),
          server_version text,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (agent_id, name)
        );

        CREATE TABLE backups (
          id uuid PRIMARY KEY,
          target_id uuid REFERENCES targets(id) ON DELETE SET NULL,
          agent_id uuid NOT NULL REFERENCES agents(id),
          storage_id uuid NOT NULL REFERENCES storage_profiles(id),
          object_key text NOT NULL,
          meta_key text NOT NULL,
          filename text NOT NULL,
          size_bytes bigint NOT NULL,
          sha256 text NOT NULL,
          status text NOT NULL,
          started_at timestamptz NOT NULL,
          finished_at timestamptz NOT NULL,
          meta jsonb NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (storage_id, object_key)
        );
        CREATE INDEX backups_target ON backups (target_id, started_at DESC);

        CREATE TABLE jobs (
          id uuid PRIMARY KEY,
          type text NOT NULL CHECK (type IN ('backup','verify','restore')),
          state text NOT NULL CHECK (state IN ('queued','running','succeeded','failed','cancelled')),
          agent_id uuid NOT NULL REFERENCES agents(id),
          target_id uuid REFERENCES targets(id) ON DELETE SET NULL,
          backup_id uuid,
          command_id uuid NOT NULL UNIQUE REFERENCES commands(id),
          params jsonb NOT NULL DEFAULT '{}',
          progress jsonb NOT NULL DEFAULT '{}',
          result jsonb,
          error jsonb,
          created_by uuid REFERENCES api_tokens(id),
          created_at timestamptz NOT NULL DEFAULT now(),
          started_at timestamptz,
          finished_at timestamptz
        );
        -- One backup of a target at a time.
        CREATE UNIQUE INDEX jobs_one_backup_per_target ON jobs (target_id) WHERE type = 'backup' AND state IN ('queued','running');
        CREATE INDEX jobs_created ON jobs (created_at DESC);

        CREATE TABLE job_logs (
          id bigserial PRIMARY KEY,
          job_id uuid NOT NULL REFERENCES jobs(id),
          at timestamptz NOT NULL DEFAULT now(),
          level text NOT NULL,
          message text NOT NULL
        );
        CREATE INDEX job_logs_job ON job_logs (job_id, id);
      `.execute(db);
    },
  },
  '0003_schedules': {
    async up(db: Kysely<unknown>) {
      await sql`
        CREATE TABLE schedules (
          id uuid PRIMARY KEY,
          target_id uuid NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
          cron text NOT NULL,
          timezone text NOT NULL,
          enabled boolean NOT NULL DEFAULT true,
          options jsonb NOT NULL DEFAULT '{}',
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX schedules_target ON schedules (target_id);

        -- Jobs the agent starts on its own schedule have no command.
        ALTER TABLE jobs ALTER COLUMN command_id DROP NOT NULL;
        ALTER TABLE jobs ADD COLUMN origin text NOT NULL DEFAULT 'api' CHECK (origin IN ('api','schedule'));
        ALTER TABLE jobs ADD COLUMN schedule_id uuid;
        ALTER TABLE jobs ADD COLUMN run_while_disconnected boolean NOT NULL DEFAULT false;
        -- The agent runs one backup at a time itself; the index guards what the API queues.
        DROP INDEX jobs_one_backup_per_target;
        CREATE UNIQUE INDEX jobs_one_backup_per_target ON jobs (target_id)
          WHERE type = 'backup' AND state IN ('queued','running') AND origin = 'api';

        ALTER TABLE backups ADD COLUMN schedule_id uuid;
        ALTER TABLE backups ADD COLUMN run_while_disconnected boolean NOT NULL DEFAULT false;
      `.execute(db);
    },
  },
  '0004_retention': {
    async up(db: Kysely<unknown>) {
      await sql`
        ALTER TABLE backups ADD COLUMN deleted_at timestamptz;
        ALTER TABLE backups ADD COLUMN deleted_reason text;
      `.execute(db);
    },
  },
  '0005_alerts': {
    async up(db: Kysely<unknown>) {
      await sql`
        ALTER TABLE jobs DROP CONSTRAINT jobs_state_check;
        ALTER TABLE jobs ADD CONSTRAINT jobs_state_check
          CHECK (state IN ('queued','running','succeeded','failed','cancelled','stalled'));
        CREATE TABLE alerts (
          id uuid PRIMARY KEY,
          kind text NOT NULL CHECK (kind IN ('backup_missed','job_stalled')),
          state text NOT NULL CHECK (state IN ('firing','resolved')),
          target_id uuid REFERENCES targets(id) ON DELETE CASCADE,
          job_id uuid,
          subject text NOT NULL,
          message text NOT NULL,
          details jsonb NOT NULL DEFAULT '{}',
          fired_at timestamptz NOT NULL DEFAULT now(),
          resolved_at timestamptz
        );
        -- One firing alert per kind and subject.
        CREATE UNIQUE INDEX alerts_one_firing ON alerts (kind, subject) WHERE state = 'firing';
        CREATE INDEX alerts_fired ON alerts (fired_at DESC);
      `.execute(db);
    },
  },
  '0006_audit': {
    async up(db: Kysely<unknown>) {
      // Append-only: the database itself refuses UPDATE, DELETE and TRUNCATE. Each row
      // carries the hash of the one before (services/audit.ts), so a row changed by
      // someone who can disable the trigger still shows.
      await sql`
        CREATE TABLE audit_log (
          id bigint PRIMARY KEY,
          at timestamptz NOT NULL,
          actor text NOT NULL,
          actor_id text,
          source_ip text,
          action text NOT NULL,
          target text,
          outcome text NOT NULL CHECK (outcome IN ('success','failure','denied')),
          status integer,
          detail jsonb NOT NULL DEFAULT '{}',
          prev_hash text NOT NULL,
          hash text NOT NULL
        );
        CREATE SEQUENCE audit_log_id_seq OWNED BY audit_log.id;
        CREATE INDEX audit_log_at ON audit_log (at);
        CREATE INDEX audit_log_actor ON audit_log (actor, id);
        CREATE INDEX audit_log_action ON audit_log (action, id);
        CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
          RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
        END
        $fn$;
        CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
          FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
        CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
          FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
      `.execute(db);
    },
  },
  '0007_users': {
    async up(db: Kysely<unknown>) {
      await sql`
        CREATE TABLE users (
          id uuid PRIMARY KEY,
          username text NOT NULL UNIQUE,
          password_hash text NOT NULL,
          role text NOT NULL CHECK (role IN ('admin','operator','viewer')),
          created_at timestamptz NOT NULL DEFAULT now(),
          disabled_at timestamptz,
          failed_logins integer NOT NULL DEFAULT 0,
          locked_until timestamptz,
          last_login_at timestamptz
        );
        CREATE TABLE refresh_tokens (
          id uuid PRIMARY KEY,
          user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
          token_hash text NOT NULL UNIQUE,
          created_at timestamptz NOT NULL DEFAULT now(),
          expires_at timestamptz NOT NULL,
          used_at timestamptz,
          revoked_at timestamptz
        );
        ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz;
      `.execute(db);
    },
  },
  '0008_notifications': {
    async up(db: Kysely<unknown>) {
      await sql`
        CREATE TABLE notification_channels (
          id uuid PRIMARY KEY,
          name text NOT NULL UNIQUE,
          kind text NOT NULL CHECK (kind IN ('webhook','slack','email')),
          sealed_config text NOT NULL,
          events jsonb NOT NULL,
          enabled boolean NOT NULL DEFAULT true,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE notification_deliveries (
          id uuid PRIMARY KEY,
          channel_id uuid NOT NULL REFERENCES notification_channels(id) ON DELETE CASCADE,
          event text NOT NULL,
          payload jsonb NOT NULL,
          state text NOT NULL CHECK (state IN ('pending','delivered','failed')),
          attempts integer NOT NULL DEFAULT 0,
          last_error text,
          next_attempt_at timestamptz NOT NULL DEFAULT now(),
          created_at timestamptz NOT NULL DEFAULT now(),
          delivered_at timestamptz
        );
        CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at) WHERE state = 'pending';
        CREATE INDEX notification_deliveries_channel ON notification_deliveries (channel_id, created_at DESC);
      `.execute(db);
    },
  },
  '0009_key_rotation': {
    async up(db: Kysely<unknown>) {
      await sql`
        CREATE TABLE key_rotations (
          id uuid PRIMARY KEY,
          to_kid text NOT NULL REFERENCES keys(kid),
          state text NOT NULL CHECK (state IN ('running','succeeded','failed')),
          total integer NOT NULL DEFAULT 0,
          done integer NOT NULL DEFAULT 0,
          last_error text,
          created_by text,
          created_at timestamptz NOT NULL DEFAULT now(),
          finished_at timestamptz
        );
        CREATE UNIQUE INDEX key_rotations_one_running ON key_rotations ((true)) WHERE state = 'running';
        ALTER TABLE keys ALTER COLUMN private_enc DROP NOT NULL;
        ALTER TABLE keys ADD COLUMN retired_at timestamptz;
      `.execute(db);
    },
  },
  '0010_principals': {
    async up(db: Kysely<unknown>) {
      // created_by names whoever acted: an API token or (since 0007) a user, so it can no
      // longer reference api_tokens alone. The audit trail records who it was by name.
      await sql`
        ALTER TABLE enrollment_tokens DROP CONSTRAINT IF EXISTS enrollment_tokens_created_by_fkey;
        ALTER TABLE commands DROP CONSTRAINT IF EXISTS commands_created_by_fkey;
        ALTER TABLE jobs DROP CONSTRAINT IF EXISTS jobs_created_by_fkey;
      `.execute(db);
    },
  },
  '0011_agent_trust': {
    async up(db: Kysely<unknown>) {
      // Events the control plane refused are kept with the reason (and acknowledged);
      // a backup's data key is bound to it (key_bound: false only for backups catalogued
      // before the binding existed, which the restore path names as legacy).
      await sql`
        ALTER TABLE agent_events ADD COLUMN rejected_reason text;
        CREATE INDEX agent_events_rejected ON agent_events (agent_id, seq) WHERE rejected_reason IS NOT NULL;
        ALTER TABLE backups ADD COLUMN key_bound boolean NOT NULL DEFAULT false;
        -- The key-encryption key the bucket's meta.json names (the catalogue's copy may be newer).
        ALTER TABLE backups ADD COLUMN meta_kid text;
        UPDATE backups SET meta_kid = meta->>'kekId';
        -- When a key stopped being the active one (its retirement waits from then).
        ALTER TABLE keys ADD COLUMN deactivated_at timestamptz;
        UPDATE keys SET deactivated_at = now() WHERE NOT active;
        ALTER TABLE alerts DROP CONSTRAINT alerts_kind_check;
        ALTER TABLE alerts ADD CONSTRAINT alerts_kind_check
          CHECK (kind IN ('backup_missed','job_stalled','agent_event_rejected','key_unavailable'));
      `.execute(db);
    },
  },
  '0012_job_storage': {
    async up(db: Kysely<unknown>) {
      // The storage a job writes to or reads from, in one column (it was found in the command's
      // payload, the scheduled run's params, or guessed from the target). No foreign key: a job's
      // history outlives the profile.
      await sql`
        ALTER TABLE jobs ADD COLUMN storage_id uuid;
        UPDATE jobs j SET storage_id = (c.payload->'storage'->>'id')::uuid
          FROM commands c WHERE j.command_id = c.id AND c.payload->'storage'->>'id' IS NOT NULL;
        UPDATE jobs SET storage_id = (params->>'storageId')::uuid
          WHERE storage_id IS NULL AND params->>'storageId' IS NOT NULL;
        UPDATE jobs j SET storage_id = b.storage_id
          FROM backups b WHERE j.storage_id IS NULL AND j.backup_id = b.id;
      `.execute(db);
    },
  },
  '0013_drills': {
    async up(db: Kysely<unknown>) {
      // Restore drills: a job type of their own, a policy per target, and their alerts.
      await sql`
        ALTER TABLE jobs DROP CONSTRAINT jobs_type_check;
        ALTER TABLE jobs ADD CONSTRAINT jobs_type_check CHECK (type IN ('backup','verify','restore','drill'));
        CREATE INDEX jobs_drills ON jobs (target_id, created_at DESC) WHERE type = 'drill';
        ALTER TABLE alerts DROP CONSTRAINT alerts_kind_check;
        ALTER TABLE alerts ADD CONSTRAINT alerts_kind_check
          CHECK (kind IN ('backup_missed','job_stalled','agent_event_rejected','key_unavailable',
                          'drill_failed','rto_exceeded','rpo_exceeded'));
        CREATE TABLE drill_policies (
          target_id uuid PRIMARY KEY REFERENCES targets(id) ON DELETE CASCADE,
          cron text,
          timezone text NOT NULL DEFAULT 'UTC',
          every_n_backups integer CHECK (every_n_backups > 0),
          enabled boolean NOT NULL DEFAULT true,
          max_restore_seconds double precision CHECK (max_restore_seconds > 0),
          max_data_age_seconds double precision CHECK (max_data_age_seconds > 0),
          last_started_at timestamptz,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );
      `.execute(db);
    },
  },
  '0014_scale': {
    // A fleet of 10 000 agents and 50 000 targets: each sweep reads only what may have changed.
    async up(db) {
      await sql`
        ALTER TABLE schedules ADD COLUMN next_expected_at timestamptz;
        CREATE INDEX schedules_next_expected ON schedules (next_expected_at) WHERE enabled;
        CREATE INDEX jobs_running ON jobs (started_at) WHERE state = 'running';
        CREATE INDEX commands_expiry ON commands (expires_at) WHERE state IN ('queued','delivered');
        CREATE INDEX agents_online_seen ON agents (last_seen_at) WHERE status = 'online';
        CREATE INDEX backups_good ON backups (target_id, started_at DESC) WHERE status = 'completed' AND deleted_at IS NULL;
        CREATE INDEX jobs_target_backups ON jobs (target_id, created_at DESC) WHERE type = 'backup';
      `.execute(db);
    },
  },
  '0015_wal': {
    // Point-in-time recovery: every archived WAL file of a physical target, and its archiver's state.
    async up(db) {
      await sql`
        ALTER TABLE jobs DROP CONSTRAINT jobs_type_check;
        ALTER TABLE jobs ADD CONSTRAINT jobs_type_check
          CHECK (type IN ('backup','verify','restore','drill','pitr_restore','wal_verify'));
        ALTER TABLE alerts DROP CONSTRAINT alerts_kind_check;
        ALTER TABLE alerts ADD CONSTRAINT alerts_kind_check
          CHECK (kind IN ('backup_missed','job_stalled','agent_event_rejected','key_unavailable',
                          'drill_failed','rto_exceeded','rpo_exceeded','wal_gap','wal_archive_lag'));
        CREATE TABLE wal_files (
          target_id uuid NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
          name text NOT NULL,
          timeline integer NOT NULL,
          segno bigint,
          agent_id uuid NOT NULL,
          storage_id uuid NOT NULL,
          object_key text NOT NULL,
          size_bytes bigint NOT NULL,
          sha256 text NOT NULL,
          wrapped_key text NOT NULL,
          kek_id text NOT NULL,
          segment_bytes integer NOT NULL,
          system_identifier text NOT NULL,
          completed_at timestamptz NOT NULL,
          archived_at timestamptz NOT NULL,
          deleted_at timestamptz,
          PRIMARY KEY (target_id, name)
        );
        CREATE INDEX wal_files_order ON wal_files (target_id, timeline, segno) WHERE deleted_at IS NULL;
        CREATE TABLE wal_status (
          target_id uuid PRIMARY KEY REFERENCES targets(id) ON DELETE CASCADE,
          agent_id uuid NOT NULL,
          receiving boolean NOT NULL,
          spool_files integer NOT NULL,
          spool_bytes bigint NOT NULL,
          spool_limit_bytes bigint NOT NULL,
          slot_retained_bytes bigint,
          last_archived text,
          error text,
          reported_at timestamptz NOT NULL
        );
      `.execute(db);
    },
  },
  '0016_dashboard': {
    // The dashboard's aggregates, kept by triggers so that reading them costs the same at any
    // catalogue size: each target's last 62 days as bitmasks (bit n = n days before day0),
    // backups and failures per day for the fleet, and the bytes stored now.
    async up(db) {
      await sql`
        CREATE INDEX jobs_target_verified ON jobs (target_id, finished_at DESC)
          WHERE type = 'verify' AND state = 'succeeded';
        CREATE INDEX jobs_active ON jobs (target_id) WHERE state IN ('queued', 'running');
        CREATE INDEX jobs_backup_failures ON jobs (created_at) WHERE type = 'backup' AND state IN ('failed', 'stalled');

        CREATE TABLE target_days (
          target_id uuid PRIMARY KEY REFERENCES targets(id) ON DELETE CASCADE,
          day0 date NOT NULL,
          good bigint NOT NULL DEFAULT 0,
          failed bigint NOT NULL DEFAULT 0,
          missed bigint NOT NULL DEFAULT 0
        );
        CREATE TABLE fleet_days (
          day date PRIMARY KEY,
          good integer NOT NULL DEFAULT 0,
          good_bytes bigint NOT NULL DEFAULT 0,
          failed integer NOT NULL DEFAULT 0
        );
        CREATE TABLE fleet_stored (
          id boolean PRIMARY KEY DEFAULT true CHECK (id),
          backups bigint NOT NULL DEFAULT 0,
          bytes bigint NOT NULL DEFAULT 0
        );

        CREATE FUNCTION dbb_mark_day(t uuid, at timestamptz, what text) RETURNS void AS $$
        DECLARE
          d date := (at AT TIME ZONE 'UTC')::date;
        BEGIN
          IF t IS NULL OR NOT EXISTS (SELECT 1 FROM targets WHERE id = t) THEN RETURN; END IF;
          INSERT INTO target_days (target_id, day0) VALUES (t, d) ON CONFLICT (target_id) DO NOTHING;
          UPDATE target_days SET
            good = CASE WHEN d <= day0 THEN good WHEN d - day0 > 61 THEN 0 ELSE good << (d - day0) END,
            failed = CASE WHEN d <= day0 THEN failed WHEN d - day0 > 61 THEN 0 ELSE failed << (d - day0) END,
            missed = CASE WHEN d <= day0 THEN missed WHEN d - day0 > 61 THEN 0 ELSE missed << (d - day0) END,
            day0 = greatest(day0, d)
           WHERE target_id = t;
          UPDATE target_days SET
            good = good | CASE WHEN what = 'good' AND day0 - d <= 61 THEN 1::bigint << (day0 - d) ELSE 0 END,
            failed = failed | CASE WHEN what = 'failed' AND day0 - d <= 61 THEN 1::bigint << (day0 - d) ELSE 0 END,
            missed = missed | CASE WHEN what = 'missed' AND day0 - d <= 61 THEN 1::bigint << (day0 - d) ELSE 0 END
           WHERE target_id = t;
        END $$ LANGUAGE plpgsql;

        CREATE FUNCTION dbb_backups_activity() RETURNS trigger AS $$
        DECLARE
          was_good boolean := TG_OP <> 'INSERT' AND OLD.status = 'completed';
          is_good boolean := TG_OP <> 'DELETE' AND NEW.status = 'completed';
          was_stored boolean := was_good AND OLD.deleted_at IS NULL;
          is_stored boolean := is_good AND NEW.deleted_at IS NULL;
        BEGIN
          IF is_good AND NOT was_good THEN
            PERFORM dbb_mark_day(NEW.target_id, NEW.started_at, 'good');
            INSERT INTO fleet_days (day, good, good_bytes) VALUES ((NEW.started_at AT TIME ZONE 'UTC')::date, 1, NEW.size_bytes)
              ON CONFLICT (day) DO UPDATE SET good = fleet_days.good + 1, good_bytes = fleet_days.good_bytes + EXCLUDED.good_bytes;
          END IF;
          IF is_stored OR was_stored THEN
            UPDATE fleet_stored SET
              backups = backups + (CASE WHEN is_stored THEN 1 ELSE 0 END) - (CASE WHEN was_stored THEN 1 ELSE 0 END),
              bytes = bytes + (CASE WHEN is_stored THEN NEW.size_bytes ELSE 0 END) - (CASE WHEN was_stored THEN OLD.size_bytes ELSE 0 END);
          END IF;
          RETURN NULL;
        END $$ LANGUAGE plpgsql;
        CREATE TRIGGER backups_activity AFTER INSERT OR UPDATE OF status, deleted_at, size_bytes OR DELETE ON backups
          FOR EACH ROW EXECUTE FUNCTION dbb_backups_activity();

        CREATE FUNCTION dbb_jobs_activity() RETURNS trigger AS $$
        BEGIN
          IF NEW.type = 'backup' AND NEW.state IN ('failed', 'stalled')
             AND (TG_OP = 'INSERT' OR OLD.state NOT IN ('failed', 'stalled')) THEN
            PERFORM dbb_mark_day(NEW.target_id, NEW.created_at, 'failed');
            INSERT INTO fleet_days (day, failed) VALUES ((NEW.created_at AT TIME ZONE 'UTC')::date, 1)
              ON CONFLICT (day) DO UPDATE SET failed = fleet_days.failed + 1;
          END IF;
          RETURN NULL;
        END $$ LANGUAGE plpgsql;
        CREATE TRIGGER jobs_activity AFTER INSERT OR UPDATE OF state ON jobs
          FOR EACH ROW EXECUTE FUNCTION dbb_jobs_activity();

        CREATE FUNCTION dbb_alerts_activity() RETURNS trigger AS $$
        BEGIN
          IF NEW.kind = 'backup_missed' THEN PERFORM dbb_mark_day(NEW.target_id, NEW.fired_at, 'missed'); END IF;
          RETURN NULL;
        END $$ LANGUAGE plpgsql;
        CREATE TRIGGER alerts_activity AFTER INSERT ON alerts
          FOR EACH ROW EXECUTE FUNCTION dbb_alerts_activity();

        -- The aggregates rebuilt from the catalogue (at this migration, and for a catalogue loaded in bulk).
        CREATE FUNCTION dbb_rebuild_activity() RETURNS void AS $$
        BEGIN
          DELETE FROM fleet_stored;
          DELETE FROM fleet_days;
          DELETE FROM target_days;
        INSERT INTO fleet_stored (id, backups, bytes)
          SELECT true, count(*), coalesce(sum(size_bytes), 0) FROM backups WHERE status = 'completed' AND deleted_at IS NULL;
        INSERT INTO fleet_days (day, good, good_bytes, failed)
          SELECT day, sum(good)::int, sum(good_bytes), sum(failed)::int FROM (
            SELECT (started_at AT TIME ZONE 'UTC')::date AS day, 1 AS good, size_bytes AS good_bytes, 0 AS failed
              FROM backups WHERE status = 'completed' AND started_at > now() - interval '62 days'
            UNION ALL
            SELECT (created_at AT TIME ZONE 'UTC')::date, 0, 0, 1
              FROM jobs WHERE type = 'backup' AND state IN ('failed', 'stalled') AND created_at > now() - interval '62 days') x
           GROUP BY day;
        INSERT INTO target_days (target_id, day0, good, failed, missed)
          SELECT t.id, c.today,
                 coalesce((SELECT bit_or(1::bigint << (c.today - d)) FROM (
                   SELECT DISTINCT (started_at AT TIME ZONE 'UTC')::date AS d FROM backups
                    WHERE target_id = t.id AND status = 'completed' AND started_at > now() - interval '61 days') x
                   WHERE c.today - d BETWEEN 0 AND 61), 0),
                 coalesce((SELECT bit_or(1::bigint << (c.today - d)) FROM (
                   SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date AS d FROM jobs
                    WHERE target_id = t.id AND type = 'backup' AND state IN ('failed', 'stalled')
                      AND created_at > now() - interval '61 days') x
                   WHERE c.today - d BETWEEN 0 AND 61), 0),
                 coalesce((SELECT bit_or(1::bigint << (c.today - d)) FROM (
                   SELECT DISTINCT (fired_at AT TIME ZONE 'UTC')::date AS d FROM alerts
                    WHERE target_id = t.id AND kind = 'backup_missed' AND fired_at > now() - interval '61 days') x
                   WHERE c.today - d BETWEEN 0 AND 61), 0)
            FROM targets t CROSS JOIN (SELECT (now() AT TIME ZONE 'UTC')::date AS today) c;
        END $$ LANGUAGE plpgsql;
        SELECT dbb_rebuild_activity();
      `.execute(db);
    },
  },
  // A database's page: each backup's job and newest verify, and the target's restores, by index.
  '0017_dashboard_target': {
    async up(db) {
      await sql`
        CREATE INDEX jobs_by_backup ON jobs (backup_id, type, created_at DESC) WHERE backup_id IS NOT NULL;
        CREATE INDEX jobs_target_restores ON jobs (target_id, created_at DESC)
          WHERE type IN ('restore', 'pitr_restore');
      `.execute(db);
    },
  },
};

class InlineProvider implements MigrationProvider {
  async getMigrations() {
    return migrations;
  }
}

export type MigrationOutcome = { error: unknown; applied: string[] };

/** Bring the schema up to date. Safe when several replicas start at once (kysely takes a lock). */
export async function migrate(db: Kysely<unknown>): Promise<MigrationOutcome> {
  const migrator = new Migrator({ db, provider: new InlineProvider() });
  const { error, results } = await migrator.migrateToLatest();
  return {
    error,
    applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName),
  };
}
