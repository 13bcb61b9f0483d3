import type { Api } from './api.js';
import type { Flags, Out } from './output.js';

/** What a command runs with: the API client, the output, its flags and positional words. */
export interface Ctx {
  api: Api;
  out: Out;
  flags: Flags;
  /** The word after the command (a subcommand, or what the command names). */
  sub: string | undefined;
  rest: string[];
  server: string;
  /** A required value, or a usage error naming what is missing. */
  need: (v: unknown, what: string) => string;
}
