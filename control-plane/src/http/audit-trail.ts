import type { Logger } from '@dbbackup/logger';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import type { Db } from '../db/database.js';
import { appendAudit } from '../services/audit.js';
import type { AuthEnv, Principal } from './auth.js';

/** The caller's address as the socket saw it (a reverse proxy's own address when there is one). */
export function sourceIp(c: Parameters<MiddlewareHandler>[0]): string | null {
  try {
    return getConnInfo(c).remote.address ?? null;
  } catch {
    return null;
  }
}

/**
 * Records every mutating API call (whatever its outcome) and every refused
 * authentication or authorisation (401/403, any method) in the audit trail:
 * who, from where, what route, on which resource, and the outcome. Bodies are
 * never recorded: they can hold storage credentials.
 */
export function auditTrail(db: Db, log: Logger): MiddlewareHandler<AuthEnv> {
  return async (c, next) => {
    await next();
    const method = c.req.method;
    const status = c.res.status;
    const mutating = method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS';
    if (!mutating && status !== 401 && status !== 403) return;
    const p = c.get('principal') as Principal | undefined;
    const route = routePath(c, -1) || c.req.path;
    try {
      await appendAudit(db, {
        actor: p ? `${p.kind ?? 'token'}:${p.name}` : 'anonymous',
        actorId: p?.tokenId ?? null,
        sourceIp: sourceIp(c),
        action: `${method} ${route.includes('*') ? c.req.path : route}`,
        target: c.req.path,
        outcome: status < 400 ? 'success' : status === 401 || status === 403 ? 'denied' : 'failure',
        status,
        detail: c.get('auditDetail') ?? {},
      });
    } catch (err) {
      log.error({ err, path: c.req.path }, 'could not append to the audit trail');
    }
  };
}
