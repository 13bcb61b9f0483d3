import { Hono } from 'hono';
import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import { agentRoutes } from './agent-routes.js';
import { alertRoutes } from './alert-routes.js';
import { auditRoutes } from './audit-routes.js';
import { type AuthEnv, authenticate } from './auth.js';
import { backupRoutes } from './backup-routes.js';
import { browserSessionRoutes } from './browser-session.js';
import { dashboardRoutes } from './dashboard-routes.js';
import { drillRoutes } from './drill-routes.js';
import { enrolmentRoutes, enrolmentTokenRoutes } from './enrolment-routes.js';
import { jobRoutes } from './job-routes.js';
import { keyRoutes } from './key-routes.js';
import { notificationRoutes } from './notification-routes.js';
import { authorize } from './permissions.js';
import { pitrRoutes } from './pitr-routes.js';
import { retentionRoutes } from './retention-routes.js';
import type { RouteDeps } from './route-deps.js';
import { scheduleRoutes } from './schedule-routes.js';
import { loginLimiter, sessionRoutes } from './session-routes.js';
import { storageRoutes } from './storage-routes.js';
import { summaryRoutes } from './summary-routes.js';
import { targetRoutes } from './target-routes.js';
import { tokenRoutes } from './token-routes.js';
import { userRoutes } from './user-routes.js';

export type { RouteDeps } from './route-deps.js';

/**
 * Every route of /api/v1, mounted in one place. Enrolment and login come first (they
 * authenticate with what their body carries); everything after them needs a token or a
 * session and passes the role check in permissions.ts.
 */
export function apiRoutes(d: RouteDeps) {
  const api = new Hono<AuthEnv>();
  api.route('/', enrolmentRoutes(d));
  // One login limiter for API and browser logins.
  const logins = loginLimiter(d.auth.loginRateLimitPerMinute);
  api.route('/', sessionRoutes(d.db, d.auth, logins));
  api.route('/', browserSessionRoutes(d.db, d.auth, logins));
  api.use('*', authenticate(d.db, d.auth.jwtKey));
  api.use('*', authorize());
  // Before the routes with an :id, which would take "summary" for one.
  api.route('/', summaryRoutes(d));
  api.route('/', dashboardRoutes(d));
  api.route('/', userRoutes(d.db));
  api.route('/', auditRoutes(d.db));
  api.route('/', storageRoutes(d));
  api.route('/', targetRoutes(d));
  api.route('/', jobRoutes(d));
  api.route('/', backupRoutes(d));
  api.route('/', keyRoutes(d));
  api.route('/', notificationRoutes({ db: d.db, box: d.box, notifier: d.notifier }));
  api.route('/', scheduleRoutes(d));
  api.route('/', retentionRoutes(d));
  api.route('/', alertRoutes(d));
  api.route('/', drillRoutes(d));
  api.route('/', pitrRoutes(d));
  api.route('/', tokenRoutes(d));
  api.route('/', enrolmentTokenRoutes(d));
  api.route('/', agentRoutes(d));
  return api;
}

export const readiness = (db: Db) => sql`SELECT 1`.execute(db);
