import type { TargetSpec } from '@dbbackup/proto';
import type { Engine } from './engine.js';
import { EngineError } from './engine.js';
import { filesEngine } from './files-engine.js';
import { mongodbEngine } from './mongodb-engine.js';
import { mysqlEngine } from './mysql-engine.js';
import { postgresEngine } from './postgres-engine.js';
import { redisEngine } from './redis-engine.js';
import { sqliteEngine } from './sqlite-engine.js';

/** Adding an engine: its module and one line here. */
const ENGINES: Record<string, Engine> = {
  postgresql: postgresEngine,
  mysql: mysqlEngine,
  sqlite: sqliteEngine,
  redis: redisEngine,
  mongodb: mongodbEngine,
  files: filesEngine,
};

export function engineFor(t: Pick<TargetSpec, 'engine'>): Engine {
  const e = ENGINES[t.engine];
  if (!e) throw new EngineError('unsupported-engine', `this agent has no '${t.engine}' engine`);
  return e;
}
