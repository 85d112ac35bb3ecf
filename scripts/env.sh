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

# Debian packages the shipper or its tests run: installed with apt-get when missing and run as root.
ensure_apt_package() { # <command> <package> <why>
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing $2 with apt-get ($3)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "$2" >/dev/null 2>&1 ||
      { apt-get update >/dev/null && apt-get install -y --no-install-recommends "$2" >/dev/null; }
  else
    echo "$1 is not installed ($3). Install it (Debian/Ubuntu: sudo apt-get install -y $2;" >&2
    echo "macOS: brew install $2), or run this script as root to have it installed for you." >&2
    exit 1
  fi
}

ensure_apt_package redis-server redis-server "state, queues and the embedded default need it"
