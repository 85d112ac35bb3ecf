# Sourced by scripts/start.sh and scripts/test.sh: makes a fresh Debian machine that has only Node
# and npm ready to run the shipper. Each step is skipped when already done.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Node 24 LTS is what the image ships. An older system Node (EOL 20 on many machines) is left alone;
# Node 24 comes from the npm registry's `node` package and goes first on PATH for this shell only.
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(node_major)" -lt 22 ]; then
  say "Node $(node --version 2>/dev/null || echo missing) is too old; fetching Node 24 from the npm registry"
  node24_bin="$(npx --yes --package node@24 -- sh -c 'dirname "$(command -v node)"' 2>/dev/null | tail -n 1)"
  export PATH="$node24_bin:$PATH"
  say "using Node $(node --version)"
fi

# npm dependencies exactly as locked (`npm ci`), reinstalled when the lock file changed. The lock
# records every platform's optional binaries, so `npm ci` works on a clean clone and never rewrites it.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi

# apt-get that waits while another apt or dpkg (unattended-upgrades, a parallel install) holds its lock,
# instead of failing at once: DPkg::Lock::Timeout makes apt wait for the dpkg lock (its "Waiting for
# cache lock" lines are shown), and a lock error it still reports (the package lists' lock on some apt
# versions) is retried for up to 10 minutes. Other output is shown only when apt-get fails.
apt_get() {
  local log status waited=0
  log="$(mktemp)"
  while :; do
    status=0
    : >"$log"
    # apt prints its "Waiting for cache lock" lines on standard output; with pipefail the status is apt's.
    apt-get -o DPkg::Lock::Timeout=600 "$@" 2>&1 | tee -a "$log" | { grep --line-buffered -i 'lock' >&2 || true; } ||
      status=$?
    if [ "$status" = 0 ]; then
      rm -f "$log"
      return 0
    fi
    if [ "$waited" -ge 600 ] || ! grep -qiE 'could not get lock|unable to (acquire|lock)' "$log"; then
      cat "$log" >&2
      rm -f "$log"
      return "$status"
    fi
    [ "$waited" -gt 0 ] || say "another apt or dpkg holds its lock; waiting for it"
    sleep 5
    waited=$((waited + 5))
  done
}

# Debian packages the shipper or its tests run: installed with apt-get when missing and run as root.
ensure_apt_package() { # <command> <package> <why>
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing $2 with apt-get ($3)"
    export DEBIAN_FRONTEND=noninteractive
    apt_get install -y --no-install-recommends "$2" ||
      { apt_get update && apt_get install -y --no-install-recommends "$2"; }
  else
    echo "$1 is not installed ($3). Install it (Debian/Ubuntu: sudo apt-get install -y $2;" >&2
    echo "macOS: brew install $2), or run this script as root to have it installed for you." >&2
    exit 1
  fi
}

ensure_apt_package redis-server redis-server "state, queues and the embedded default need it"
