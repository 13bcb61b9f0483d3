import type { Logger } from '@dbbackup/logger';
import type { Config } from './config.js';
import type { SecretBox } from './crypto/secret-box.js';
import type { Db } from './db/database.js';
import { purgeExpiredJtis } from './gateway/agent-auth.js';
import { sweepStaleAgents } from './services/agent-status.js';
import { sweepStalledJobs } from './services/alerts.js';
import { expireCommands } from './services/command-state.js';
import { runDueDrills } from './services/drills.js';
import { sweepMissedBackups } from './services/missed-backups.js';
import type { NotifyBus } from './services/notify-bus.js';

/**
 * The periodic sweep, every half heartbeat interval: agents without a heartbeat go offline,
 * expired commands end (and their jobs), queued commands are pushed again (`dispatchQueued`,
 * behind NOTIFY), stalled jobs are marked; missed backups and due drills are looked for every two seconds.
 * Returns the function that stops it.
 */
export function startSweeper(
  db: Db,
  config: Config,
  log: Logger,
  d: {
    dispatchQueued: () => Promise<void>;
    box: SecretBox;
    bus: NotifyBus;
    /** Write the heartbeats this process has seen but not yet written (see Liveness). */
    flushLiveness?: () => Promise<void>;
  },
) {
  const dispatchQueued = d.dispatchQueued;
  let lastMissedSweep = 0;
  // A fleet reconnecting after a restart (its backoff may have grown to a minute while no process
  // ran) is marked offline by nobody before the reconnect grace has passed (see sweepStaleAgents).
  const staleMs = 2 * config.heartbeatIntervalMs + 500;
  const silentFrom = new Date(Date.now() + Math.max(0, config.reconnectGraceMs - staleMs));
  const sweeper = setInterval(
    () => {
      void (async () => {
        // Judge silence on every heartbeat this process has received: a flush held back by a slow
        // database must not make an agent whose heartbeats arrive look silent.
        await d.flushLiveness?.();
        const offline = await sweepStaleAgents(db, staleMs, silentFrom);
        if (offline.length) log.info({ agents: offline }, 'agents marked offline (no heartbeat)');
        const expired = await expireCommands(db);
        if (expired) log.info({ expired }, 'commands expired');
        await purgeExpiredJtis(db);
        await dispatchQueued();
        const stalled = await sweepStalledJobs(db, config.jobMaxDurationMs);
        if (stalled.length) log.warn({ jobs: stalled }, 'jobs marked stalled');
        // Schedules are looked at every few seconds, not at every heartbeat sweep.
        if (Date.now() - lastMissedSweep >= 2000) {
          lastMissedSweep = Date.now();
          const missed = await sweepMissedBackups(db, config.missedBackupGraceMs);
          if (missed.fired.length) log.warn({ targets: missed.fired }, 'backup_missed alerts fired');
          await runDueDrills(
            db,
            d.box,
            config.commandTtlSeconds,
            (agentId) => d.bus.publish({ kind: 'commands', agentId }),
            (o, m) => log.warn(o, m),
          );
        }
      })().catch((err) => log.warn({ err }, 'sweep failed'));
    },
    Math.max(100, Math.floor(config.heartbeatIntervalMs / 2)),
  );

  return () => clearInterval(sweeper);
}
