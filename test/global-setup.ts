import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { cleanupAll, REPO_ROOT, startPostgres } from '@dbbackup/testkit';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
  }
}

/** One real PostgreSQL cluster for the whole run; each test file makes its own databases in it. */
export default async function setup(project: TestProject) {
  // The agent runs from its esbuild bundle, as users run it: build it from the current sources.
  execFileSync('node', ['build.mjs'], { cwd: path.join(REPO_ROOT, 'agent'), stdio: 'inherit' });
  // The web dashboard the control plane serves, built by Vite from the current sources.
  // A production build (vitest sets NODE_ENV=test, which would give React's development build).
  execFileSync('pnpm', ['run', '--silent', 'build:web'], {
    cwd: REPO_ROOT,
    stdio: 'inherit',
    env: { ...process.env, NODE_ENV: 'production' },
  });
  const pg = await startPostgres();
  project.provide('pgAdminUrl', pg.url());
  return async () => {
    await cleanupAll();
  };
}
