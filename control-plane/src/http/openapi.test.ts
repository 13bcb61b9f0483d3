import { describe, expect, it } from 'vitest';
import { openApiDocument, openApiPath } from './openapi.js';
import { registeredRoutes } from './test-app.js';

describe('the OpenAPI document', () => {
  it('describes every route the app registers, and nothing it does not', () => {
    const doc = openApiDocument() as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`),
    );
    const routes = registeredRoutes()
      .filter((r) => !r.startsWith('GET /docs/'))
      .map((r) => {
        const [m, p] = r.split(' ') as [string, string];
        return `${m} ${openApiPath(p)}`;
      });
    expect(routes.length).toBeGreaterThan(60);
    expect(routes.filter((r) => !documented.includes(r))).toEqual([]);
    expect(documented.filter((r) => !routes.includes(r))).toEqual([]);
  });
});
