import { describe, expect, it } from 'vitest';
import { PERMISSIONS, PUBLIC_ROUTES } from './permissions.js';
import { registeredRoutes } from './test-app.js';

const apiRoutes = () => registeredRoutes().filter((r) => r.split(' ')[1]?.startsWith('/api/v1/'));

describe('the permission table', () => {
  it('has exactly one row per authenticated route the app registers', () => {
    const routes = apiRoutes().filter((r) => !r.endsWith('/openapi.json'));
    expect(routes.length).toBeGreaterThan(50);
    const unlisted = routes.filter((r) => !(r in PERMISSIONS) && !PUBLIC_ROUTES.includes(r));
    const stale = Object.keys(PERMISSIONS).filter((r) => !routes.includes(r));
    expect(unlisted).toEqual([]);
    expect(stale).toEqual([]);
  });

  it('keeps reads for viewers, changes for operators, and secrets and identities for admins', () => {
    for (const [route, role] of Object.entries(PERMISSIONS)) {
      if (!route.startsWith('GET ')) expect(role, route).not.toBe('viewer');
    }
    for (const route of [
      'POST /api/v1/tokens',
      'GET /api/v1/tokens',
      'DELETE /api/v1/tokens/:id',
      'POST /api/v1/storage',
      'DELETE /api/v1/storage/:id',
      'POST /api/v1/keys/kek/export',
      'POST /api/v1/users',
      'GET /api/v1/users',
      'PATCH /api/v1/users/:id',
      'DELETE /api/v1/users/:id',
      'GET /api/v1/audit',
      'GET /api/v1/audit/export',
    ]) {
      expect(PERMISSIONS[route], route).toBe('admin');
    }
  });
});
