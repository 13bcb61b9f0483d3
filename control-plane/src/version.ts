import { readFileSync } from 'node:fs';

/** The release version, from this package's package.json (kept equal to the agent's and the installer's). */
export const CONTROL_PLANE_VERSION: string = JSON.parse(
  readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
).version;
