#!/usr/bin/env bash
# Start the control plane on embedded defaults: no Postgres to install, data in
# ./data/control-plane, listening on http://127.0.0.1:8080. Needs only Node.js 20 and npm.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v pnpm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then npm install -g pnpm@10; else npm install -g pnpm@10 || sudo npm install -g pnpm@10; fi
fi
pnpm install --frozen-lockfile --reporter=silent
# The agent bundle (dist/agent-bundles/) is what install.sh downloads from this control plane.
pnpm run build:agent
# The web dashboard the control plane serves at / (packages/web/dist).
pnpm run build:web
exec node --import "$(pwd)/control-plane/node_modules/tsx/dist/esm/index.mjs" scripts/quickstart.ts
