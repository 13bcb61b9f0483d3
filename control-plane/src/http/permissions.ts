import type { MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import type { Role } from '../db/schema.js';
import { forbidden } from '../problem.js';
import type { AuthEnv } from './auth.js';

export const ROLES: readonly Role[] = ['viewer', 'operator', 'admin'];
export const roleRank = (r: Role) => ROLES.indexOf(r);

/**
 * Who may call what: the one permission table. Every authenticated route has a
 * row (the least role that may call it; roles are ordered viewer < operator <
 * admin); a route without a row is refused, so a new route is closed until it
 * is listed here. `test/roles.test.ts` walks every row with every role.
 */
export const PERMISSIONS: Readonly<Record<string, Role>> = {
  'POST /api/v1/tokens': 'admin',
  'GET /api/v1/tokens': 'admin',
  'DELETE /api/v1/tokens/:id': 'admin',
  'POST /api/v1/enrollment-tokens': 'operator',
  'GET /api/v1/agents': 'viewer',
  'GET /api/v1/agents/summary': 'viewer',
  'GET /api/v1/targets/summary': 'viewer',
  'GET /api/v1/agents/:id': 'viewer',
  'DELETE /api/v1/agents/:id': 'operator',
  'POST /api/v1/agents/:id/commands': 'operator',
  'GET /api/v1/agents/:id/commands': 'viewer',
  'GET /api/v1/commands/:id': 'viewer',
  'GET /api/v1/agents/:id/events': 'viewer',
  'POST /api/v1/storage': 'admin',
  'GET /api/v1/storage': 'viewer',
  'GET /api/v1/storage/:id': 'viewer',
  'POST /api/v1/storage/:id/rescan': 'admin',
  'POST /api/v1/storage/:id/test': 'operator',
  'DELETE /api/v1/storage/:id': 'admin',
  'POST /api/v1/agents/:id/targets': 'operator',
  'GET /api/v1/agents/:id/discovered': 'viewer',
  'POST /api/v1/agents/:id/discovered/:key/adopt': 'operator',
  'GET /api/v1/targets': 'viewer',
  'GET /api/v1/agents/:id/targets': 'viewer',
  'GET /api/v1/targets/:id': 'viewer',
  'PATCH /api/v1/targets/:id': 'operator',
  'DELETE /api/v1/targets/:id': 'operator',
  'POST /api/v1/targets/:id/backups': 'operator',
  'GET /api/v1/jobs': 'viewer',
  'GET /api/v1/jobs/:id': 'viewer',
  'GET /api/v1/jobs/:id/logs': 'viewer',
  'GET /api/v1/backups': 'viewer',
  'GET /api/v1/backups/:id': 'viewer',
  'DELETE /api/v1/backups/:id': 'operator',
  'POST /api/v1/backups/:id/verify': 'operator',
  'POST /api/v1/backups/:id/restore': 'operator',
  'GET /api/v1/targets/:id/recovery-window': 'viewer',
  'POST /api/v1/targets/:id/restore': 'operator',
  'POST /api/v1/targets/:id/verify-chain': 'operator',
  'GET /api/v1/keys/kek': 'viewer',
  'POST /api/v1/keys/kek/export': 'admin',
  'POST /api/v1/keys/kek/rotate': 'admin',
  'GET /api/v1/keys/rotations': 'admin',
  'GET /api/v1/keys/rotations/:id': 'admin',
  'POST /api/v1/targets/:id/schedules': 'operator',
  'GET /api/v1/targets/:id/schedules': 'viewer',
  'GET /api/v1/targets/:id/schedules/:scheduleId': 'viewer',
  'PATCH /api/v1/targets/:id/schedules/:scheduleId': 'operator',
  'DELETE /api/v1/targets/:id/schedules/:scheduleId': 'operator',
  'GET /api/v1/targets/:id/retention': 'viewer',
  'PUT /api/v1/targets/:id/retention': 'operator',
  'GET /api/v1/targets/:id/retention/preview': 'viewer',
  'POST /api/v1/targets/:id/cleanup': 'operator',
  'GET /api/v1/alerts': 'viewer',
  'GET /api/v1/targets/:id/health': 'viewer',
  'PUT /api/v1/targets/:id/drill': 'operator',
  'GET /api/v1/targets/:id/drill': 'viewer',
  'DELETE /api/v1/targets/:id/drill': 'operator',
  'POST /api/v1/targets/:id/drills': 'operator',
  'GET /api/v1/targets/:id/drills': 'viewer',
  'GET /api/v1/reports/recoverability': 'viewer',
  'GET /api/v1/audit': 'admin',
  'GET /api/v1/audit/export': 'admin',
  'GET /api/v1/audit/verify': 'admin',
  'POST /api/v1/notifications/channels': 'admin',
  'GET /api/v1/notifications/channels': 'operator',
  'GET /api/v1/notifications/channels/:id': 'operator',
  'PATCH /api/v1/notifications/channels/:id': 'admin',
  'DELETE /api/v1/notifications/channels/:id': 'admin',
  'GET /api/v1/notifications/deliveries': 'operator',
  'POST /api/v1/notifications/test': 'operator',
  'GET /api/v1/auth/me': 'viewer',
  'GET /api/v1/dashboard/overview': 'viewer',
  'GET /api/v1/dashboard/targets': 'viewer',
  'GET /api/v1/dashboard/targets/:id': 'viewer',
  'GET /api/v1/jobs/:id/events': 'viewer',
  'GET /api/v1/auth/permissions': 'viewer',
  'POST /api/v1/users': 'admin',
  'GET /api/v1/users': 'admin',
  'PATCH /api/v1/users/:id': 'admin',
  'DELETE /api/v1/users/:id': 'admin',
};

/** Routes that authenticate by other means (a one-time token or a password in the body). */
export const PUBLIC_ROUTES: readonly string[] = [
  'POST /api/v1/agents/enroll',
  'POST /api/v1/auth/login',
  'POST /api/v1/auth/refresh',
  'POST /api/v1/auth/logout',
  // Browser sessions: a password, or the session cookie with its CSRF token (browser-session.ts).
  'POST /api/v1/auth/session',
  'POST /api/v1/auth/session/refresh',
  'POST /api/v1/auth/session/logout',
];

/** Enforce PERMISSIONS for the route that matched (after `authenticate`). */
export function authorize(): MiddlewareHandler<AuthEnv> {
  return async (c, next) => {
    const handler = matchedRoutes(c).at(-1);
    // No handler matched: let the request fall through to 404.
    if (!handler || handler.method === 'ALL') return next();
    const method = c.req.method === 'HEAD' ? 'GET' : c.req.method;
    const key = `${method} ${handler.path}`;
    const need = PERMISSIONS[key];
    const p = c.get('principal');
    if (!need) throw forbidden(`no permission is defined for ${key}`);
    if (roleRank(p.role) < roleRank(need)) {
      throw forbidden(`this action needs the ${need} role; ${p.kind ?? 'token'} '${p.name}' has ${p.role}`);
    }
    await next();
  };
}
