#!/bin/sh
# Builds the production tree into $1: dist/, package.json and production-only node_modules.
# The Dockerfile runs exactly this, and test/packaging/production-build.test.ts runs it without Docker,
# so what the image contains is what the test checked.
set -eu
out="$1"
mkdir -p "$out"
npm install --no-audit --no-fund --ignore-scripts
npx tsc -p tsconfig.build.json --outDir "$out/dist"
cp package.json package-lock.json "$out/"
cd "$out"
npm install --omit=dev --no-audit --no-fund --ignore-scripts
rm package-lock.json
