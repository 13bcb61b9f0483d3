import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Proc, startProcess, trackDir } from './processes.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const CP_BIN = path.join(REPO_ROOT, 'control-plane/bin/dbbackup-control-plane');

export interface ControlPlane {
  url: string;
  port: number;
  dataDir: string;
  databaseUrl: string;
  adminToken: string;
  proc: Proc;
  /** Call the REST API; `token` defaults to the admin token, `null` sends none. */
  api<T = unknown>(
    method: string,
    p: string,
    body?: unknown,
    token?: string | null,
  ): Promise<{ status: number; body: T; headers: Headers }>;
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Start again with the same port, data directory and database. */
  restart(): Promise<void>;
}

export interface ControlPlaneOptions {
  databaseUrl: string;
  env?: Record<string, string>;
  heartbeatIntervalMs?: number;
  /** Another replica of a database that already has its admin token (this one writes none). */
  adminToken?: string;
}

async function launch(o: ControlPlaneOptions, dataDir: string, port: number) {
  const proc = startProcess(CP_BIN, [], {
    env: {
      DBBACKUP_DATABASE_URL: o.databaseUrl,
      DBBACKUP_DATA_DIR: dataDir,
      DBBACKUP_HOST: '127.0.0.1',
      DBBACKUP_PORT: String(port),
      DBBACKUP_HEARTBEAT_INTERVAL_MS: String(o.heartbeatIntervalMs ?? 500),
      DBBACKUP_LOG_LEVEL: 'debug',
      // Agents under test reconnect within a second or two (their backoff is short).
      DBBACKUP_RECONNECT_GRACE_MS: '3000',
      ...o.env,
    },
  });
  const line = await proc.waitForLine(/control plane listening/, 60_000);
  return { proc, port: (JSON.parse(line) as { port: number }).port };
}

/** Start the real control plane as a child process on 127.0.0.1 (a random port) against the given database. */
export async function startControlPlane(o: ControlPlaneOptions): Promise<ControlPlane> {
  const dataDir = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-cp-')));
  let { proc, port } = await launch(o, dataDir, 0);
  const adminToken = o.adminToken ?? readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
  const cp: ControlPlane = {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    dataDir,
    databaseUrl: o.databaseUrl,
    adminToken,
    get proc() {
      return proc;
    },
    async api(method, p, body, token) {
      const headers: Record<string, string> = {};
      const t = token === undefined ? adminToken : token;
      if (t !== null) headers.authorization = `Bearer ${t}`;
      let payload: string | undefined;
      if (body !== undefined) {
        headers['content-type'] = 'application/json';
        payload = typeof body === 'string' ? body : JSON.stringify(body);
      }
      const res = await fetch(`${cp.url}${p}`, {
        method,
        headers,
        ...(payload !== undefined ? { body: payload } : {}),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {}
      return { status: res.status, body: parsed as never, headers: res.headers };
    },
    async stop(signal = 'SIGTERM') {
      await proc.kill(signal);
    },
    async restart() {
      ({ proc, port } = await launch(o, dataDir, port));
    },
  };
  return cp;
}
