import { type AgentConfig, type AgentSchedule, archivesWal, type Command } from '@dbbackup/proto';
import type { KekSource } from '../crypto/key-encryption-key.js';
import type { SecretBox } from '../crypto/secret-box.js';
import type { Db } from '../db/database.js';
import { createCommand } from './command-state.js';
import { drillVerdicts } from './drill-verdicts.js';
import type { NotifyBus } from './notify-bus.js';
import { storageSpecFor } from './storage-specs.js';
import { targetSpecFromRow } from './target-specs.js';

/** How long a config.sync waits for an agent that is away (it is superseded by any newer one anyway). */
const CONFIG_TTL_SECONDS = 90 * 86_400;

/**
 * What an agent needs to back up on its own: its targets with their enabled and
 * disabled schedules, each schedule's storage resolved with credentials, the KEK
 * public key and the naming. Built when a config.sync is sent, never stored.
 */
export async function buildAgentConfig(
  db: Db,
  box: SecretBox,
  kekSource: KekSource,
  agentId: string,
  onSkipped?: (scheduleIds: string[]) => void,
): Promise<AgentConfig> {
  const kek = await kekSource.current();
  const agent = await db
    .selectFrom('agents')
    .select(['hostname', 'labels', 'config_version'])
    .where('id', '=', agentId)
    .executeTakeFirstOrThrow();
  const targets = await db
    .selectFrom('targets')
    .selectAll()
    .where('agent_id', '=', agentId)
    .orderBy('created_at')
    .execute();
  const schedules = targets.length
    ? await db
        .selectFrom('schedules')
        .selectAll()
        .where(
          'target_id',
          'in',
          targets.map((t) => t.id),
        )
        .orderBy('created_at')
        .execute()
    : [];
  const storages = new Map<string, Awaited<ReturnType<typeof storageSpecFor>> | undefined>();
  // A storage profile that cannot be resolved leaves its schedules out; it never stops the configuration.
  const storage = async (id: string) => {
    if (!storages.has(id)) storages.set(id, await storageSpecFor(db, box, id).catch(() => undefined));
    return storages.get(id);
  };
  const out: AgentConfig['targets'] = [];
  const skipped: string[] = [];
  for (const t of targets) {
    let target: ReturnType<typeof targetSpecFromRow>;
    try {
      target = targetSpecFromRow(t);
    } catch {
      continue;
    }
    const mine: AgentSchedule[] = [];
    for (const s of schedules.filter((x) => x.target_id === t.id)) {
      const into = await storage(s.options.storageId ?? t.storage_id);
      if (!into) {
        skipped.push(s.id);
        continue;
      }
      mine.push({
        id: s.id,
        cron: s.cron,
        timezone: s.timezone,
        enabled: s.enabled,
        storage: into,
        ...(s.options.compression ? { compression: s.options.compression } : {}),
      });
    }
    const { unproven, keep } = await drillVerdicts(db, t.id);
    // A physical target's WAL goes, continuously, to the target's own storage.
    const wal = archivesWal(target) ? await storage(t.storage_id) : undefined;
    out.push({ target, schedules: mine, ...(unproven.length ? { unproven } : {}) });
    if (keep.length) out[out.length - 1]!.keep = keep;
    if (wal) out[out.length - 1]!.wal = { storage: wal };
  }
  if (skipped.length) onSkipped?.(skipped);
  return {
    version: agent.config_version,
    naming: { env: (agent.labels as Record<string, string>).env ?? 'default', agentName: agent.hostname },
    kek: { kid: kek.kid, publicJwk: kek.publicJwk },
    targets: out,
  };
}

/**
 * A new configuration version for the agent, and its config.sync command queued. Returns
 * false if there is no such agent. From inside another transaction (a drill's end) that is
 * all: the sweeper's dispatch sends the command after the commit.
 */
export async function bumpAgentConfigLater(db: Db, agentId: string, createdBy: string | null = null) {
  const r = await db
    .updateTable('agents')
    .set((eb) => ({ config_version: eb('config_version', '+', 1) }))
    .where('id', '=', agentId)
    .returning('config_version')
    .executeTakeFirst();
  if (!r) return false;
  const command: Command = { kind: 'config.sync', version: r.config_version };
  await createCommand(db, { agentId, command, ttlSeconds: CONFIG_TTL_SECONDS, createdBy });
  return true;
}

/** A new configuration version for the agent, delivered by a config.sync command (reliable, exactly once). */
export async function bumpAgentConfig(db: Db, bus: NotifyBus, agentId: string, createdBy: string | null) {
  if (await bumpAgentConfigLater(db, agentId, createdBy)) await bus.publish({ kind: 'commands', agentId });
}
