import type { Logger } from '@dbbackup/logger';
import type { Command } from '@dbbackup/proto';
import type { KekSource } from '../crypto/key-encryption-key.js';
import type { SecretBox } from '../crypto/secret-box.js';
import type { Db } from '../db/database.js';
import { buildAgentConfig } from './agent-config.js';
import { storageSpecFor } from './storage-specs.js';

export interface HydrationDeps {
  db: Db;
  box: SecretBox;
  kek: KekSource;
  log: Logger;
}

/**
 * Complete a stored command on its way to the agent. Command rows never hold storage
 * credentials (the storage profile keeps them sealed) nor the agent's whole configuration
 * (built when it is sent, so it is never stale): both are put in here, and only here.
 */
export async function hydrateCommand(d: HydrationDeps, agentId: string, command: Command): Promise<Command> {
  if (command.kind === 'config.sync') {
    const config = await buildAgentConfig(d.db, d.box, d.kek, agentId, (schedules) =>
      d.log.warn({ agentId, schedules }, 'schedules left out of the configuration: their storage is gone'),
    );
    return { ...command, config };
  }
  if (command.kind === 'pitr.restore' || command.kind === 'pitr.drill') {
    const spec = (id: string) => storageSpecFor(d.db, d.box, id);
    const base = { ...command.base, storage: await spec(command.base.storage.id) };
    const ancestors = command.ancestors
      ? await Promise.all(command.ancestors.map(async (a) => ({ ...a, storage: await spec(a.storage.id) })))
      : undefined;
    return {
      ...command,
      base,
      ...(ancestors ? { ancestors } : {}),
      walStorage: await spec(command.walStorage.id),
    };
  }
  if (command.kind === 'wal.verify')
    return { ...command, walStorage: await storageSpecFor(d.db, d.box, command.walStorage.id) };
  if ('storage' in command && command.storage) {
    return { ...command, storage: await storageSpecFor(d.db, d.box, command.storage.id) } as Command;
  }
  return command;
}
