import type { Logger } from '@dbbackup/logger';
import type { AgentPayload, ServerPayload } from '@dbbackup/proto';
import type { Identity } from '../identity.js';
import type { AgentStore } from '../store/agent-store.js';
import type { LinkState } from './link-state.js';

/** What the agent's link is built from, and the events it emits. */

export interface LinkOptions {
  identity: Identity;
  store: AgentStore;
  log: Logger;
  agentVersion: string;
  ca?: Buffer;
  backoffBaseMs: number;
  backoffCapMs: number;
  stableAfterMs: number;
  /** Test fault injection: SIGKILL this process in the middle of replaying a backlog of events. */
  crashDuringReplay?: boolean;
  /** Used until the welcome names the control plane's own interval. */
  heartbeatIntervalMs: number;
  collectFacts: () => Promise<AgentPayload<'heartbeat'>['facts']>;
}

export interface LinkEvents {
  command: [ServerPayload<'command'>];
  revoked: [string];
  state: [LinkState];
}
