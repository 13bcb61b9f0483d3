import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'proto/src/**/*.test.ts',
      'packages/*/src/**/*.test.ts',
      'agent/src/**/*.test.ts',
      'control-plane/src/**/*.test.ts',
      'test/**/*.test.ts',
    ],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
  },
});
