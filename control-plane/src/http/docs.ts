import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Hono } from 'hono';
import { ProblemError } from '../problem.js';
import { openApiDocument } from './openapi.js';

const require = createRequire(import.meta.url);
/** Swagger UI's files come from the swagger-ui-dist package: /docs works with no internet access. */
const UI_DIR = path.dirname(require.resolve('swagger-ui-dist/package.json'));
const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'swagger-ui-standalone-preset.js': 'text/javascript; charset=utf-8',
};

const PAGE = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>dbbackup API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({ url: '/api/v1/openapi.json', dom_id: '#ui', persistAuthorization: true });</script>
</body></html>
`;

/** GET /api/v1/openapi.json and the interactive page at /docs (public: the document holds no data). */
export function docsRoutes() {
  const r = new Hono();
  r.get('/api/v1/openapi.json', (c) => c.json(openApiDocument()));
  r.get('/docs', (c) => c.html(PAGE));
  r.get('/docs/:asset', async (c) => {
    const name = c.req.param('asset');
    const type = ASSETS[name];
    if (!type) throw new ProblemError(404, 'Not Found', `no such file ${name}`);
    return c.body(await readFile(path.join(UI_DIR, name)), 200, {
      'content-type': type,
      'cache-control': 'public, max-age=86400',
    });
  });
  return r;
}
