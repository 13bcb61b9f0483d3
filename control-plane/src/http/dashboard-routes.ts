import { Hono } from 'hono';
import { compareVersions, listBundles } from '../services/agent-bundles.js';
import { fleetOverview, targetsOverview } from '../services/dashboard.js';
import { targetDetail } from '../services/dashboard-target.js';
import type { AuthEnv } from './auth.js';
import { uuidParam } from './input.js';
import type { RouteDeps } from './route-deps.js';

/** The web dashboard's aggregate reads (viewer): built for it, never a list counted by the client. */
export function dashboardRoutes({ db, agentBundleDir }: RouteDeps) {
  const api = new Hono<AuthEnv>();
  api.get('/dashboard/overview', async (c) => {
    const [fleet, bundles] = await Promise.all([fleetOverview(db), listBundles(agentBundleDir)]);
    // The newest agent this control plane serves: an older agent gets the upgrade hint.
    const agentRelease = bundles.map((b) => b.version).sort((a, b) => compareVersions(b, a))[0] ?? null;
    return c.json({ ...fleet, agentRelease });
  });
  api.get('/dashboard/targets', async (c) => {
    const items = await targetsOverview(db);
    return c.json({ items, total: items.length });
  });
  api.get('/dashboard/targets/:id', async (c) =>
    c.json(await targetDetail(db, uuidParam(c, 'id', 'target'))),
  );
  return api;
}
