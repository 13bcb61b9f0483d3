#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian 12 machine that has
# only Node.js 20 and npm, then lint, type-check and run every test.
# Results: .tmp/vitest-results.json and .tmp/extra-failed; scripts/test-summary.mjs turns them into one line.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages the tests start for real (PostgreSQL, MariaDB, Redis, SQLite, with their client tools; zstd; Chromium).
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v pg_dump >/dev/null 2>&1 || need+=(postgresql-client)
command -v zstd >/dev/null 2>&1 || need+=(zstd)
[ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
command -v mariadb-dump >/dev/null 2>&1 || need+=(mariadb-client)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
# The installer test: install.sh downloads with curl; `docker compose config` checks the compose file
# (Debian 12 has no compose v2 plugin; its docker-compose 1.29 validates the same file without an engine).
command -v curl >/dev/null 2>&1 || need+=(curl)
# The dashboard's browser tests drive Debian's Chromium (no browser download).
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || need+=(docker-compose)
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

command -v pnpm >/dev/null 2>&1 || as_root npm install -g pnpm@10 >/dev/null
pnpm install --frozen-lockfile --reporter=append-only

# Lint, type-check and structure failures are counted as failures, but the tests still run and the summary is printed.
set +e
extra_failed=0
pnpm run lint || extra_failed=$((extra_failed + 1))
pnpm run typecheck || extra_failed=$((extra_failed + 1))
# No import circle, no services/gateway import of http/, no file over 400 lines, no function over 80.
pnpm run check:structure || extra_failed=$((extra_failed + 1))

mkdir -p .tmp
rm -f .tmp/vitest-results.json .tmp/extra-failed
pnpm exec vitest run --reporter=default --reporter=json --outputFile.json=.tmp/vitest-results.json
status=$?
set -e
if [ "$extra_failed" -gt 0 ] && [ "$status" -eq 0 ]; then status=1; fi
# Lint/type-check failures, for the summary line .ci/run prints (scripts/test-summary.mjs).
echo "$extra_failed" > .tmp/extra-failed
exit $status
