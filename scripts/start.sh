#!/usr/bin/env bash
# Runs the shipper. Without arguments: the embedded default (the built-in STACKIT simulator as
# provider, a local redis-server with AOF under ./data/redis, events appended to ./data/events.ndjson).
# Arguments go to `auditlog-shipper run`, e.g. scripts/start.sh -c config/example.yaml
source "$(dirname "$0")/env.sh"
exec node src/cli/main.ts run "$@"
