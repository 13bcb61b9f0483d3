import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Hono } from 'hono';
import { ProblemError } from '../problem.js';

/**
 * The web dashboard (packages/web, built by Vite into packages/web/dist): index.html for
 * each of the app's own paths, and its content-hashed assets with a year of caching. A
 * strict Content-Security-Policy: scripts, styles, fonts and connections from this origin
 * only, no inline script, never framed.
 */

export const WEB_PATHS = ['/', '/login', '/databases', '/databases/:id', '/hosts', '/settings', '/jobs/:id'];

export const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join('; ');

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
};

export function webDir(): string {
  return (
    process.env.DBBACKUP_WEB_DIR ??
    path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../packages/web/dist')
  );
}

const SECURITY_HEADERS = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

export function webRoutes(dir = webDir()) {
  const r = new Hono();
  const page = async () => {
    const file = path.join(dir, 'index.html');
    if (!existsSync(file))
      throw new ProblemError(
        503,
        'Service Unavailable',
        `the web dashboard is not built (${file} is missing): run pnpm build:web; the API is at /api/v1 and /docs`,
      );
    return readFile(file);
  };
  for (const p of WEB_PATHS)
    r.get(p, async (c) =>
      c.body(await page(), 200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-cache',
        ...SECURITY_HEADERS,
      }),
    );
  r.get('/assets/:file', async (c) => {
    const name = c.req.param('file');
    const type = TYPES[path.extname(name)];
    if (!/^[A-Za-z0-9_.-]+$/.test(name) || !type)
      throw new ProblemError(404, 'Not Found', `no asset ${name}`);
    const body = await readFile(path.join(dir, 'assets', name)).catch(() => undefined);
    if (!body) throw new ProblemError(404, 'Not Found', `no asset ${name}`);
    return c.body(body, 200, {
      'content-type': type,
      'cache-control': 'public, max-age=31536000, immutable',
      ...SECURITY_HEADERS,
    });
  });
  return r;
}
