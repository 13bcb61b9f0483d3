import type { Logger } from '@dbbackup/logger';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { registry } from '../services/metrics.js';
import { auditTrail } from './audit-trail.js';
import { hashToken, sameHash } from './auth.js';
import { docsRoutes } from './docs.js';
import { type InstallDeps, installRoutes } from './install-routes.js';
import { ProblemError, renderProblem } from './problem.js';
import { apiRoutes, type RouteDeps, readiness } from './routes.js';

export interface AppDeps extends RouteDeps, InstallDeps {
  log: Logger;
  maxBodyBytes: number;
  /** When set, GET /metrics needs `Authorization: Bearer <this>`. */
  metricsToken?: string | undefined;
}

/** The REST surface. Every error leaves through `onError` as problem+json. */
export function createApp(d: AppDeps) {
  const app = new Hono();

  app.use(
    '*',
    bodyLimit({
      maxSize: d.maxBodyBytes,
      onError: () => {
        throw new ProblemError(413, 'Content Too Large', `request body exceeds ${d.maxBodyBytes} bytes`);
      },
    }),
  );

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    try {
      await readiness(d.db);
      return c.json({ status: 'ready' });
    } catch {
      return renderProblem(c, new ProblemError(503, 'Service Unavailable', 'database not reachable'));
    }
  });

  app.get('/metrics', async (c) => {
    if (d.metricsToken) {
      const given = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1] ?? '';
      if (!sameHash(hashToken(given), hashToken(d.metricsToken))) {
        throw new ProblemError(
          401,
          'Unauthorized',
          'metrics need Authorization: Bearer <DBBACKUP_METRICS_TOKEN>',
        );
      }
    }
    return c.body(await registry.metrics(), 200, { 'content-type': registry.contentType });
  });

  app.route('/', docsRoutes());
  app.use('/api/v1/*', auditTrail(d.db, d.log));
  app.route('/api/v1', apiRoutes(d));
  app.route('/', installRoutes(d));

  app.notFound((c) =>
    renderProblem(c, new ProblemError(404, 'Not Found', `no route for ${c.req.method} ${c.req.path}`)),
  );
  app.onError((err, c) => {
    if (err instanceof ProblemError) return renderProblem(c, err);
    if (err instanceof HTTPException) {
      return renderProblem(
        c,
        new ProblemError(err.status as 400, 'Request Error', err.message || 'bad request'),
      );
    }
    d.log.error({ err, path: c.req.path, method: c.req.method }, 'unhandled error');
    return renderProblem(
      c,
      new ProblemError(500, 'Internal Server Error', 'internal error; see the control-plane log'),
    );
  });
  return app;
}
