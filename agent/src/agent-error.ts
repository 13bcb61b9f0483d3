/**
 * The agent's one error type for a failure it can name: a short stable `code` (it reaches
 * the control plane in `command.failed` and `scheduled.finished` events) and a message for
 * people, with the underlying error as `cause`. Engines, jobs and command handlers all throw it.
 */
export class AgentError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AgentError';
  }
}
