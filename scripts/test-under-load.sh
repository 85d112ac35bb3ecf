#!/usr/bin/env bash
# The whole test suite, N times in a row (default 3), with a CPU hog on every core beside it: proof that
# no test depends on how fast the machine happens to be. Stops at the first failing run; the hog is
# always stopped, whatever happens. Arguments after N go to vitest.
#
#   scripts/test-under-load.sh            # 3 runs of `npx vitest run`
#   scripts/test-under-load.sh 5 test/e2e # 5 runs of the end-to-end tests
#
# It loads the whole machine: on a shared one, hold the suite lock while it runs, e.g.
#   flock /work/.suite.lock scripts/test-under-load.sh
source "$(dirname "$0")/env.sh"
ensure_apt_package stress-ng stress-ng "scripts/test-under-load.sh runs a CPU hog beside the tests"

runs="${1:-3}"
shift || true
case "$runs" in '' | *[!0-9]*) echo "usage: $0 [RUNS] [vitest args...]" >&2; exit 2 ;; esac

hog=""
stop_hog() {
  [ -n "$hog" ] || return 0
  # The hog leads its own process group (setsid): the group signal reaches every stressor.
  kill -TERM -- "-$hog" 2>/dev/null || kill -TERM "$hog" 2>/dev/null || true
  wait "$hog" 2>/dev/null || true
  kill -KILL -- "-$hog" 2>/dev/null || true
  hog=""
}
trap stop_hog EXIT
trap 'stop_hog; exit 130' INT
trap 'stop_hog; exit 143' TERM

cores="$(nproc)"
say "CPU hog: stress-ng on all $cores cores"
setsid stress-ng --cpu 0 --cpu-load 100 --timeout 0 --quiet &
hog=$!

for run in $(seq 1 "$runs"); do
  say "run $run of $runs: npx vitest run $* (beside the hog)"
  if ! npx vitest run "$@"; then
    say "run $run of $runs failed under load"
    exit 1
  fi
done
say "all $runs runs green under load"
