import { OpenAPIHono, z } from '@hono/zod-openapi';
import { CONTROL_PLANE_VERSION } from '../version.js';
import { Json, Problem, SPECS } from './openapi-specs.js';
import { PERMISSIONS, PUBLIC_ROUTES } from './permissions.js';
import { WEB_PATHS } from './web-routes.js';

/**
 * The OpenAPI 3.1 document of the REST API, built with @hono/zod-openapi's
 * registry. Every route of the permission table (and the public ones) is
 * described: its role, parameters, body and answers; the core resources have
 * exact response schemas, which the end-to-end test checks real answers
 * against (test/openapi.test.ts), the rest answer a JSON object. Errors are
 * always problem+json.
 */

/** `/api/v1/targets/:id` → `/api/v1/targets/{id}` */
export const openApiPath = (p: string) => p.replace(/:(\w+)/g, '{$1}');

let cached: object | undefined;

type Registry = OpenAPIHono['openAPIRegistry'];

const problem = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: Problem } },
});

/** One API route's entry: its summary, the role it needs, its body and responses with their problems. */
function registerRoute(registry: Registry, route: string, role: string | null) {
  const [method, path] = route.split(' ') as [string, string];
  const spec = SPECS[route] ?? { summary: route };
  const params = [...path.matchAll(/:(\w+)/g)].map((m) => m[1] as string);
  const status = spec.status ?? 200;
  const hasBody = method !== 'GET' && method !== 'DELETE';
  registry.registerPath({
    method: method.toLowerCase() as 'get',
    path: openApiPath(path),
    tags: [path.split('/')[3] ?? 'api'],
    summary: spec.summary,
    description: role ? `Needs the ${role} role (or higher).` : 'Public: authenticated by its body.',
    ...(role ? { security: [{ bearer: [] }] } : {}),
    request: {
      ...(params.length ? { params: z.object(Object.fromEntries(params.map((p) => [p, z.string()]))) } : {}),
      ...(hasBody ? { body: { content: { 'application/json': { schema: spec.body ?? Json } } } } : {}),
    },
    responses: {
      [status]:
        status === 204
          ? { description: 'Done' }
          : { description: 'OK', content: { 'application/json': { schema: spec.response ?? Json } } },
      ...(role
        ? { 401: problem('Not authenticated'), 403: problem('Role too low') }
        : {
            401: problem('Token or password refused'),
            429: problem('Too many attempts; see Retry-After'),
          }),
      ...(hasBody ? { 413: problem('Body too large'), 415: problem('Not JSON') } : {}),
      400: problem('Malformed request'),
      404: problem('Not found'),
      409: problem('Conflict'),
      422: problem('Invalid body'),
    },
  });
}

/** The routes outside /api/v1 that answer plain GETs. */
function registerServiceRoutes(registry: Registry) {
  const plain = (path: string, summary: string, type: string) =>
    registry.registerPath({
      method: 'get',
      path,
      tags: ['service'],
      summary,
      responses: { 200: { description: 'OK', content: { [type]: { schema: z.string() } } } },
    });
  plain('/healthz', 'Liveness', 'application/json');
  plain('/readyz', 'Readiness (database reachable)', 'application/json');
  plain('/metrics', 'Prometheus metrics (bearer DBBACKUP_METRICS_TOKEN if set)', 'text/plain');
  plain('/install.sh', 'The agent installer, with this control plane filled in', 'text/x-shellscript');
  plain('/agent/release', 'Newest agent bundle for ?platform= (key=value lines)', 'text/plain');
  plain('/agent/files/{file}', 'An agent bundle', 'application/gzip');
  plain('/api/v1/openapi.json', 'This document', 'application/json');
  plain('/docs', 'Interactive API documentation', 'text/html');
  for (const p of WEB_PATHS) plain(openApiPath(p), 'The web dashboard (one page app)', 'text/html');
  plain('/assets/{file}', "The web dashboard's content-hashed assets", 'application/octet-stream');
}

export function openApiDocument(): object {
  if (cached) return cached;
  // The routes themselves are plain Hono handlers guarded by the permission table;
  // this OpenAPIHono instance only carries their descriptions to the generator.
  const describer = new OpenAPIHono();
  const registry = describer.openAPIRegistry;
  registry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'An API token (dbb_api_…) or an access token from POST /api/v1/auth/login',
  });
  registry.register('Problem', Problem);
  for (const [route, role] of Object.entries(PERMISSIONS)) registerRoute(registry, route, role);
  for (const route of PUBLIC_ROUTES) registerRoute(registry, route, null);
  registerServiceRoutes(registry);
  cached = describer.getOpenAPI31Document({
    openapi: '3.1.0',
    info: {
      title: 'dbbackup control plane',
      version: CONTROL_PLANE_VERSION,
      description: 'Errors are RFC 7807 problem+json. Roles: viewer < operator < admin.',
    },
    servers: [{ url: '/' }],
  });
  return cached;
}
