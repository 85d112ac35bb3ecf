#!/bin/sh
# Builds the production tree into $1: dist/, package.json and production-only node_modules.
# The Dockerfile runs exactly this, and test/packaging/production-build.test.ts runs it without Docker,
# so what the image contains is what the test checked. `npm ci` installs exactly what package-lock.json
# records (and fails if package.json and the lock disagree), never a newer release of a dependency.
set -eu
out="$1"
mkdir -p "$out"
npm ci --no-audit --no-fund --ignore-scripts
npx tsc -p tsconfig.build.json --outDir "$out/dist"
cp package.json package-lock.json "$out/"
cd "$out"
npm ci --omit=dev --no-audit --no-fund --ignore-scripts
rm package-lock.json
