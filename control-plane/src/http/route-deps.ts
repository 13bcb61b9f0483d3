import type { Context } from 'hono';
import type { KekSource } from '../crypto/key-encryption-key.js';
import type { SecretBox } from '../crypto/secret-box.js';
import type { Db } from '../db/database.js';
import type { Notifier } from '../services/notifications.js';
import type { NotifyBus } from '../services/notify-bus.js';
import type { AuthEnv, AuthSettings } from './auth.js';

/** What the REST routes are built from (server.ts makes it; http/test-app.ts makes an inert one). */
export interface RouteDeps {
  db: Db;
  box: SecretBox;
  kek: KekSource;
  bus: NotifyBus;
  notifier: Notifier;
  clusterId: string;
  heartbeatIntervalMs: number;
  commandTtlSeconds: number;
  enrollmentTokenTtlSeconds: number;
  targetTestTimeoutMs: number;
  publicUrl: string | undefined;
  auth: AuthSettings;
  /** Where the agent bundles install.sh serves are (the dashboard's upgrade hint reads their versions). */
  agentBundleDir: string;
}

/** A request context behind authentication: `c.get('principal')` is who asks. */
export type Ctx = Context<AuthEnv>;
