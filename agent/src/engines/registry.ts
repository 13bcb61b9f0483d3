import type { TargetSpec } from '@dbbackup/proto';
import { AgentError } from '../agent-error.js';
import type { Engine } from './engine.js';

/**
 * Adding an engine: its module and one line here. Each engine (and the client
 * libraries it pulls in) is loaded only when a target of that engine is used, so
 * an agent backing up PostgreSQL never carries the MySQL, Redis or tar code.
 */
const ENGINES: Record<string, () => Promise<Engine>> = {
  postgresql: async () => (await import('./postgres-engine.js')).postgresEngine,
  mysql: async () => (await import('./mysql-engine.js')).mysqlEngine,
  sqlite: async () => (await import('./sqlite-engine.js')).sqliteEngine,
  redis: async () => (await import('./redis-engine.js')).redisEngine,
  mongodb: async () => (await import('./mongodb-engine.js')).mongodbEngine,
  files: async () => (await import('./files-engine.js')).filesEngine,
};

export async function engineFor(
  t: Pick<TargetSpec, 'engine'> & { options?: { physical?: boolean | undefined } },
): Promise<Engine> {
  // A physical PostgreSQL target is backed up with pg_basebackup instead of pg_dump.
  if (t.engine === 'postgresql' && t.options?.physical)
    return (await import('./postgres-physical.js')).physicalEngine;
  const load = Object.hasOwn(ENGINES, t.engine) ? ENGINES[t.engine] : undefined;
  if (!load) throw new AgentError('unsupported-engine', `this agent has no '${t.engine}' engine`);
  return load();
}
