import { cleanupAll, startPostgres } from '@dbbackup/testkit';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
  }
}

/** One real PostgreSQL cluster for the whole run; each test file makes its own databases in it. */
export default async function setup(project: TestProject) {
  const pg = await startPostgres();
  project.provide('pgAdminUrl', pg.url());
  return async () => {
    await cleanupAll();
  };
}
