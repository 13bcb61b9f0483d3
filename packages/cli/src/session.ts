import { Api, readSaved, usage, writeSaved } from './api.js';
import type { Flags, Out } from './output.js';

/** Who the CLI talks to and as whom: `login` saves it; every other command reads it back. */

async function readPassword(env: NodeJS.ProcessEnv): Promise<string> {
  if (env.DBBACKUP_PASSWORD) return env.DBBACKUP_PASSWORD;
  if (process.stdin.isTTY) process.stderr.write('password: ');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').split('\n')[0] ?? '';
}

/** `dbbackup login`: with an API token, or a user's password (from DBBACKUP_PASSWORD or stdin). */
export async function login(server: string, flags: Flags, env: NodeJS.ProcessEnv, out: Out): Promise<void> {
  if (!server) throw usage('login needs --server URL');
  if (flags.token) {
    const api = new Api(server, flags.token as string);
    const me = await api.get<{ name: string; role: string }>('/api/v1/auth/me');
    await writeSaved(env, { server, token: flags.token as string });
    out.write(`logged in to ${server} as ${me.name} (${me.role}) with an API token\n`);
    return;
  }
  if (!flags.username) throw usage('login needs --token TOKEN or --username NAME');
  const api = new Api(server, undefined);
  const r = await api.post<{
    accessToken: string;
    refreshToken: string;
    user: { username: string; role: string };
  }>('/api/v1/auth/login', { username: flags.username, password: await readPassword(env) });
  await writeSaved(env, { server, token: r.accessToken, refreshToken: r.refreshToken });
  out.write(`logged in to ${server} as ${r.user.username} (${r.user.role})\n`);
}

/** The server named by --server, DBBACKUP_SERVER or the saved login. */
export async function serverOf(flags: Flags, env: NodeJS.ProcessEnv): Promise<string> {
  const saved = await readSaved(env);
  return ((flags.server as string) ?? env.DBBACKUP_SERVER ?? saved.server ?? '').replace(/\/+$/, '');
}

/** An API client with the credentials given, or saved ones (a saved session refreshes itself). */
export async function connect(server: string, flags: Flags, env: NodeJS.ProcessEnv): Promise<Api> {
  if (!server) throw usage('no server: pass --server URL, set DBBACKUP_SERVER, or run dbbackup login');
  const saved = await readSaved(env);
  const token = (flags.token as string) ?? env.DBBACKUP_TOKEN ?? saved.token;
  if (!token) throw usage('no credentials: pass --token, set DBBACKUP_TOKEN, or run dbbackup login');
  const refresh =
    !flags.token && !env.DBBACKUP_TOKEN && saved.refreshToken
      ? async () => {
          const r = await new Api(server, undefined)
            .post<{ accessToken: string; refreshToken: string }>('/api/v1/auth/refresh', {
              refreshToken: saved.refreshToken,
            })
            .catch(() => undefined);
          if (!r) return undefined;
          await writeSaved(env, { server, token: r.accessToken, refreshToken: r.refreshToken });
          return r.accessToken;
        }
      : undefined;
  return new Api(server, token, refresh);
}
