import type { TargetSpec } from '@dbbackup/proto';
import type { Db } from '../db/database.js';
import { conflict, notFound, ProblemError } from '../problem.js';
import { createCommand, getCommand, TERMINAL } from './command-state.js';
import type { NotifyBus } from './notify-bus.js';
import { checkStorage } from './storage-specs.js';

export interface ConnectionTestDeps {
  db: Db;
  bus: NotifyBus;
  timeoutMs: number;
}

/** What a passed connection test reports. */
export interface ConnectionTested {
  serverVersion: string;
  toolVersion: string;
}

/**
 * The connection-test round trip: a target is tested through its agent before it is saved.
 * A `target.test` command goes to the agent (which must be online); its outcome is read back
 * from the command row, which the agent's event settles on whichever replica holds its socket.
 * A failed test is a 422 with the agent's reason, no answer in time a 504.
 */
export async function testConnection(
  d: ConnectionTestDeps,
  agentId: string,
  target: TargetSpec & { storageId: string },
  createdBy: string,
): Promise<ConnectionTested> {
  await checkTestable(d.db, agentId, target.storageId);
  const commandId = await createCommand(d.db, {
    agentId,
    command: {
      kind: 'target.test',
      target: {
        id: target.id,
        engine: target.engine,
        name: target.name,
        connection: target.connection,
        secretRef: target.secretRef,
        options: target.options,
      },
    },
    ttlSeconds: Math.ceil(d.timeoutMs / 1000) + 5,
    createdBy,
  });
  await d.bus.publish({ kind: 'commands', agentId });
  return awaitOutcome(d, commandId);
}

async function checkTestable(db: Db, agentId: string, storageId: string) {
  const agent = await db.selectFrom('agents').select(['status']).where('id', '=', agentId).executeTakeFirst();
  if (!agent) throw notFound('agent');
  if (agent.status === 'revoked') throw conflict('agent has been revoked', 'agent-revoked');
  if (agent.status !== 'online')
    throw conflict(
      `agent is ${agent.status}; a target is tested through its agent before it is saved`,
      'agent-offline',
    );
  await checkStorage(db, storageId);
}

/** Read the command back until it is settled or the time is up (every 100 ms). */
async function awaitOutcome(d: ConnectionTestDeps, commandId: string): Promise<ConnectionTested> {
  const deadline = Date.now() + d.timeoutMs;
  while (Date.now() < deadline) {
    const cmd = await getCommand(d.db, commandId);
    if (cmd && TERMINAL.includes(cmd.state)) {
      if (cmd.state === 'succeeded') return cmd.result as ConnectionTested;
      const e = cmd.error as { code?: string; message?: string } | null;
      throw new ProblemError(
        422,
        'Unprocessable Content',
        `connection test failed on the agent: ${e?.message ?? cmd.state}`,
        { type: 'target-test-failed', extra: { code: e?.code ?? cmd.state, commandId } },
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new ProblemError(
    504,
    'Gateway Timeout',
    `the agent did not answer the connection test within ${d.timeoutMs} ms`,
    { type: 'target-test-timeout', extra: { commandId } },
  );
}
