/**
 * The dashboard's connection to the control plane (same origin). The access token lives in
 * this module's memory only; the refresh token is an HttpOnly cookie the page never sees.
 * Renewing the session (at start, or when the access token expired) is a cookie call that
 * carries the CSRF token from the `dbb_csrf` cookie; it is serialized across tabs (Web Locks)
 * because a refresh token is good once and its reuse ends every session of the user.
 */

export type Role = 'viewer' | 'operator' | 'admin';
export interface User {
  id: string;
  username: string;
  role: Role;
}

/** An error the API answered (problem+json), or the connection being lost (status 0). */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly type?: string,
  ) {
    super(message);
  }
}

interface Session {
  accessToken: string;
  user: User;
}

let session: Session | undefined;
const listeners = new Set<(u: User | undefined) => void>();
const connectionListeners = new Set<(lost: boolean) => void>();

export function onSession(fn: (u: User | undefined) => void) {
  listeners.add(fn);
  return () => {
    listeners.delete(fn);
  };
}
export function onConnection(fn: (lost: boolean) => void) {
  connectionListeners.add(fn);
  return () => {
    connectionListeners.delete(fn);
  };
}
function setSession(s: Session | undefined) {
  session = s;
  for (const l of listeners) l(s?.user);
}
function connection(lost: boolean) {
  for (const l of connectionListeners) l(lost);
}

function csrfCookie(): string | undefined {
  return document.cookie
    .split('; ')
    .find((c) => c.startsWith('dbb_csrf='))
    ?.slice('dbb_csrf='.length);
}

async function send(
  method: string,
  path: string,
  init: { body?: unknown; headers?: Record<string, string> },
) {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: {
        accept: 'application/json',
        ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...init.headers,
      },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
  } catch {
    connection(true);
    throw new ApiError('the control plane cannot be reached; retrying', 0);
  }
  connection(false);
  if (res.status === 204) return undefined;
  const text = await res.text();
  const body = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
  if (!res.ok) {
    const detail = typeof body?.detail === 'string' ? body.detail : `${res.status} ${res.statusText}`;
    throw new ApiError(detail, res.status, typeof body?.type === 'string' ? body.type : undefined);
  }
  return body;
}

type Tokens = { accessToken: string; csrfToken: string; user: User };

export async function login(username: string, password: string): Promise<User> {
  const t = (await send('POST', '/api/v1/auth/session', { body: { username, password } })) as Tokens;
  setSession({ accessToken: t.accessToken, user: t.user });
  return t.user;
}

let renewing: Promise<boolean> | undefined;

/** Renew the session from its cookie; false when there is none (or it ended). */
export function renew(): Promise<boolean> {
  renewing ??= (async () => {
    const run = async () => {
      const csrf = csrfCookie();
      if (!csrf) return false;
      try {
        const t = (await send('POST', '/api/v1/auth/session/refresh', {
          headers: { 'x-csrf-token': csrf },
        })) as Tokens;
        setSession({ accessToken: t.accessToken, user: t.user });
        return true;
      } catch (err) {
        if (err instanceof ApiError && err.status === 0) throw err;
        setSession(undefined);
        return false;
      }
    };
    const locks = (navigator as Navigator & { locks?: LockManager }).locks;
    return locks ? locks.request('dbbackup-session', run) : run();
  })().finally(() => {
    renewing = undefined;
  });
  return renewing;
}

export async function logout() {
  const csrf = csrfCookie();
  try {
    if (csrf) await send('POST', '/api/v1/auth/session/logout', { headers: { 'x-csrf-token': csrf } });
  } finally {
    setSession(undefined);
  }
}

/** An API call with the access token; an expired one is renewed once from the cookie. */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const call = () =>
    send(method, `/api/v1${path}`, {
      body,
      headers: session ? { authorization: `Bearer ${session.accessToken}` } : {},
    });
  try {
    return (await call()) as T;
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) throw err;
    if (!(await renew())) throw err;
    return (await call()) as T;
  }
}

export const currentUser = () => session?.user;

/** Save what an API call answers as a file (an export): fetched with the token, never shown on the page. */
export async function download(path: string, filename: string, method = 'GET') {
  const call = () =>
    fetch(`/api/v1${path}`, {
      method,
      headers: session ? { authorization: `Bearer ${session.accessToken}` } : {},
    });
  let res = await call();
  if (res.status === 401 && (await renew())) res = await call();
  if (!res.ok) {
    const body = (await res.json().catch(() => ({}))) as { detail?: string };
    throw new ApiError(body.detail ?? `${res.status} ${res.statusText}`, res.status);
  }
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * Follow a Server-Sent Events stream with the access token (EventSource cannot send one):
 * reconnects after a drop with Last-Event-ID, so no event is lost or repeated. Returns a stop function.
 */
export function follow(
  path: string,
  onEvent: (event: string, data: string) => void,
  onEnd: () => void,
): () => void {
  let stopped = false;
  let lastId = '';
  const ctl = { abort: new AbortController() };
  const once = async (): Promise<boolean> => {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (session) headers.authorization = `Bearer ${session.accessToken}`;
    if (lastId) headers['last-event-id'] = lastId;
    const res = await fetch(`/api/v1${path}`, { headers, signal: ctl.abort.signal });
    if (res.status === 401 && (await renew())) return false;
    if (!res.ok || !res.body) throw new ApiError(`${res.status} ${res.statusText}`, res.status);
    connection(false);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return false;
      buf += value;
      let cut = buf.indexOf('\n\n');
      while (cut >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        cut = buf.indexOf('\n\n');
        let event = 'message';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('id:')) lastId = line.slice(3).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        }
        if (event === 'end') {
          onEvent(event, data.join('\n'));
          return true;
        }
        onEvent(event, data.join('\n'));
      }
    }
  };
  void (async () => {
    while (!stopped) {
      try {
        if (await once()) break;
      } catch (err) {
        if (stopped) return;
        if (err instanceof TypeError) connection(true);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    if (!stopped) onEnd();
  })();
  return () => {
    stopped = true;
    ctl.abort.abort();
  };
}
