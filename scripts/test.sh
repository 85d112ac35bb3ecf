#!/usr/bin/env bash
# The whole check CI runs: types, lint, the production build, then every test (real redis-server,
# the simulator, end-to-end runs of the daemon). Arguments go to vitest, e.g. scripts/test.sh test/e2e
source "$(dirname "$0")/env.sh"
ensure_apt_package promtool prometheus "a test scrapes the daemon with a real Prometheus and checks the alert rules"
say "type check"
npx tsc --noEmit -p tsconfig.json
say "lint"
npx biome check .
say "production build"
npx tsc -p tsconfig.build.json
node dist/cli/main.js --version >/dev/null
say "tests"
npx vitest run "$@"
