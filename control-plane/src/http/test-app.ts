import { createApp } from './app.js';

/** The real app built with inert dependencies, for tests that only look at its routes (nothing is called). */
export function inertApp() {
  const inert = {} as never;
  return createApp({
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
    box: inert,
    kek: inert,
    targetTestTimeoutMs: 1000,
  });
}

/** `METHOD /path` of every handler the app registers. */
export function registeredRoutes(): string[] {
  return [
    ...new Set(
      inertApp()
        .routes.filter((r) => r.method !== 'ALL')
        .map((r) => `${r.method} ${r.path}`),
    ),
  ];
}
