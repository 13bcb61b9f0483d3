/** The states of the agent's link (the transitions between them are in agent-link.ts). */
export type LinkState = 'idle' | 'connecting' | 'handshaking' | 'ready' | 'backoff' | 'stopping' | 'stopped';
