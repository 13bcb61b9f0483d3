import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** Exit codes: what a script can tell apart. */
export const EXIT = { ok: 0, failure: 1, usage: 2, notFound: 3, auth: 4 } as const;

export class CliError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}
export const usage = (m: string) => new CliError(m, EXIT.usage);

export type Problem = {
  title?: string;
  detail?: string;
  status?: number;
  errors?: { path: string; message: string }[];
};

/** The server's answer as an error: its problem detail, and the exit code its status means. */
export class ApiError extends CliError {
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    const code =
      status === 404
        ? EXIT.notFound
        : status === 401 || status === 403
          ? EXIT.auth
          : status === 400 || status === 422
            ? EXIT.usage
            : EXIT.failure;
    super(`${problem.title ?? `HTTP ${status}`}: ${problem.detail ?? 'no detail'}`, code);
  }
}

export interface Saved {
  server?: string;
  token?: string;
  refreshToken?: string;
}

export function configFile(env: NodeJS.ProcessEnv): string {
  const base = env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), '.config');
  return path.join(base, 'dbbackup', 'cli.json');
}

export async function readSaved(env: NodeJS.ProcessEnv): Promise<Saved> {
  try {
    return JSON.parse(await readFile(configFile(env), 'utf8')) as Saved;
  } catch {
    return {};
  }
}

/** Saved owner-only (0600 file in a 0700 directory): it holds a credential. */
export async function writeSaved(env: NodeJS.ProcessEnv, s: Saved) {
  const file = configFile(env);
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeFile(file, `${JSON.stringify(s, null, 2)}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
}

export class Api {
  constructor(
    readonly server: string,
    private token: string | undefined,
    private readonly onRefresh?: () => Promise<string | undefined>,
  ) {}

  async raw(method: string, p: string, body?: unknown): Promise<Response> {
    const send = () =>
      fetch(`${this.server}${p}`, {
        method,
        headers: {
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      }).catch((err: Error) => {
        throw new CliError(
          `cannot reach ${this.server}: ${(err.cause as Error)?.message ?? err.message}`,
          EXIT.failure,
        );
      });
    let res = await send();
    if (res.status === 401 && this.onRefresh) {
      const fresh = await this.onRefresh();
      if (fresh) {
        this.token = fresh;
        res = await send();
      }
    }
    return res;
  }

  async call<T = unknown>(method: string, p: string, body?: unknown): Promise<T> {
    const res = await this.raw(method, p, body);
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = { detail: text.slice(0, 200) };
    }
    if (!res.ok) throw new ApiError(res.status, (parsed ?? {}) as Problem);
    return parsed as T;
  }

  get = <T>(p: string) => this.call<T>('GET', p);
  post = <T>(p: string, body: unknown = {}) => this.call<T>('POST', p, body);

  /** Every item of a paged list, following its cursors (up to `max` items). */
  async all<T>(p: string, max = 100_000): Promise<{ items: T[] }> {
    const items: T[] = [];
    let cursor: string | null = null;
    do {
      const sep = p.includes('?') ? '&' : '?';
      const page: { items: T[]; nextCursor?: string | null } = await this.get(
        cursor ? `${p}${sep}limit=1000&cursor=${encodeURIComponent(cursor)}` : `${p}${sep}limit=1000`,
      );
      items.push(...page.items);
      cursor = page.nextCursor ?? null;
    } while (cursor && items.length < max);
    return { items };
  }
}
