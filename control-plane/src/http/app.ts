import type { Logger } from '@dbbackup/logger';
import { type Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { ProblemError, problemBody } from '../problem.js';
import { registry } from '../services/metrics.js';
import { auditTrail } from './audit-trail.js';
import { hashToken, sameHash } from './auth.js';
import { docsRoutes } from './docs.js';
import { type InstallDeps, installRoutes } from './install-routes.js';
import { apiRoutes, type RouteDeps, readiness } from './routes.js';
import { webRoutes } from './web-routes.js';

export interface AppDeps extends RouteDeps, InstallDeps {
  log: Logger;
  maxBodyBytes: number;
  /** When set, GET /metrics needs `Authorization: Bearer <this>`. */
  metricsToken?: string | undefined;
}

/** How much of an unread request body is read and discarded before an early error is sent. */
const DRAIN_LIMIT = 16 * 1024 * 1024;

/** Read and discard what is left of a request body, up to `limit` bytes or `ms`. */
async function drain(body: ReadableStream<Uint8Array>, limit: number, ms: number): Promise<void> {
  const reader = body.getReader();
  const deadline = Date.now() + ms;
  let seen = 0;
  try {
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0 || seen > limit) break;
      let timer: NodeJS.Timeout | undefined;
      const r = await Promise.race([
        reader.read(),
        new Promise<undefined>((resolve) => {
          timer = setTimeout(() => resolve(undefined), left);
        }),
      ]);
      clearTimeout(timer);
      if (!r || r.done) break;
      seen += r.value.byteLength;
    }
  } catch {
    // The client went away: nothing left to drain.
  } finally {
    reader.releaseLock();
  }
}

function renderProblem(c: Context, p: ProblemError): Response {
  return c.body(JSON.stringify(problemBody(p, c.req.path)), p.status, {
    'content-type': 'application/problem+json',
    // The unread rest of an oversized body must not be parsed as the next request.
    ...(p.status === 413 ? { connection: 'close' } : {}),
  });
}

/** The REST surface. Every error leaves through `onError` as problem+json. */
export function createApp(d: AppDeps) {
  const app = new Hono();

  // An error answered before the request body was read leaves unread bytes on the
  // connection; a pooled client reusing it would see its next request fail. Such a
  // response says Connection: close, so the client opens a fresh one.
  app.use('*', async (c, next) => {
    await next();
    const length = c.req.header('content-length');
    const hasBody =
      (length !== undefined && length !== '0') || c.req.header('transfer-encoding') !== undefined;
    if (c.res.status < 400 || !hasBody) return;
    // The body is drained first (up to DRAIN_LIMIT bytes, 10 s), so a client still sending
    // it reads the answer instead of a broken pipe.
    const body = c.req.raw.bodyUsed ? null : c.req.raw.body;
    if (body && !body.locked && Number(length ?? 0) <= DRAIN_LIMIT) await drain(body, DRAIN_LIMIT, 10_000);
    c.res.headers.set('connection', 'close');
  });

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
  app.route('/', webRoutes());

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
