import { describe, expect, it } from 'vitest';
import { createApp } from './app.js';
import { PERMISSIONS, PUBLIC_ROUTES } from './permissions.js';

/** The routes the real app registers, built with inert dependencies (nothing is called). */
function registeredRoutes(): string[] {
  const inert = {} as never;
  const app = createApp({
    notifier: inert,
    db: inert,
    bus: inert,
    log: inert,
    clusterId: 'x',
    heartbeatIntervalMs: 1000,
    commandTtlSeconds: 60,
    enrollmentTokenTtlSeconds: 60,
    maxBodyBytes: 1024,
    publicUrl: undefined,
    agentBundleDir: '/nonexistent',
    auth: {
      jwtKey: new Uint8Array(32),
      accessTokenTtlSeconds: 60,
      refreshTokenTtlSeconds: 600,
      loginMaxFailures: 5,
      loginLockoutSeconds: 60,
      loginRateLimitPerMinute: 10,
    },
    backups: {
      db: inert,
      box: inert,
      kek: inert,
      bus: inert,
      commandTtlSeconds: 60,
      targetTestTimeoutMs: 1000,
    },
  });
  return [
    ...new Set(
      app.routes
        .filter((r) => r.method !== 'ALL' && r.path.startsWith('/api/v1/'))
        .map((r) => `${r.method} ${r.path}`),
    ),
  ];
}

describe('the permission table', () => {
  it('has exactly one row per authenticated route the app registers', () => {
    const routes = registeredRoutes();
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
