import type { Logger } from '@dbbackup/logger';
import type { ServerPayload } from '@dbbackup/proto';
import type { AgentStore } from '../store/agent-store.js';

/**
 * A command arrives: it is recorded in the inbox before anything else (invariant 3), so a
 * kill at any moment either loses it unacknowledged (the control plane sends it again) or
 * keeps it to run once. A repeat of a recorded command is acknowledged again, never run again.
 * The caller acknowledges once this returns.
 */
export async function intake(
  store: AgentStore,
  c: ServerPayload<'command'>,
  crashPoint: string | undefined,
  log: Logger,
): Promise<'new' | 'repeat'> {
  if (crashPoint === 'before-record') process.kill(process.pid, 'SIGKILL');
  const outcome = await store.recordCommand({
    commandId: c.commandId,
    kind: c.command.kind,
    payload: c.command,
    expiresAt: c.expiresAt,
  });
  if (outcome === 'new' && crashPoint === 'after-record') process.kill(process.pid, 'SIGKILL');
  if (outcome === 'repeat')
    log.info({ commandId: c.commandId }, 'repeated command re-acknowledged, not re-run');
  else log.info({ commandId: c.commandId, kind: c.command.kind }, 'command recorded');
  return outcome;
}
