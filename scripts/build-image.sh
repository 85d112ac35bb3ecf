#!/usr/bin/env bash
# Builds the container image from the Dockerfile with its OCI labels filled in: version from
# package.json, revision from git (with -dirty when the work tree has changes), source from the
# Dockerfile's default or --source. The release workflow (.github/workflows/release.yml) runs it with --push.
#
#   scripts/build-image.sh                       # local image: IMAGE:VERSION and IMAGE:REVISION
#   scripts/build-image.sh --push --platform linux/amd64,linux/arm64 --image ghcr.io/me/auditlog-shipper
#   scripts/build-image.sh --dry-run             # print the command, run nothing
#
# Options:
#   --image NAME        repository (default ghcr.io/auditlog-shipper/auditlog-shipper, or $IMAGE)
#   --tag TAG           a tag to add (repeatable; default: the version and the short revision)
#   --platform LIST     build for these platforms with buildx (needs --push: a multi-platform image
#                       cannot be loaded into the local engine)
#   --push              push the tags (docker buildx build --push)
#   --source URL        org.opencontainers.image.source
#   --dry-run           print the build command and exit
# Environment: CONTAINER_CLI (default docker; podman works for local builds).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() { sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

image="${IMAGE:-ghcr.io/auditlog-shipper/auditlog-shipper}"
tags=()
platform=""
push=false
dry_run=false
source_url=""
while [ $# -gt 0 ]; do
  case "$1" in
    --image) [ $# -ge 2 ] || usage; image="$2"; shift 2 ;;
    --tag) [ $# -ge 2 ] || usage; tags+=("$2"); shift 2 ;;
    --platform) [ $# -ge 2 ] || usage; platform="$2"; shift 2 ;;
    --source) [ $# -ge 2 ] || usage; source_url="$2"; shift 2 ;;
    --push) push=true; shift ;;
    --dry-run) dry_run=true; shift ;;
    -h | --help) usage ;;
    *) echo "build-image.sh: unknown argument: $1" >&2; usage ;;
  esac
done
if [ -n "$platform" ] && [ "$push" = false ]; then
  echo "build-image.sh: --platform builds a multi-platform image, which only --push can keep" >&2
  exit 2
fi

version="$(sed -n 's/^  "version": "\([^"]*\)".*/\1/p' package.json | head -n 1)"
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
if [ "$revision" != unknown ] && [ -n "$(git status --porcelain 2>/dev/null)" ]; then
  revision="$revision-dirty"
fi
if [ ${#tags[@]} -eq 0 ]; then
  tags=("$version")
  if [ "$revision" != unknown ]; then
    short="${revision%-dirty}"
    short="${short:0:12}"
    [ "$revision" = "${revision%-dirty}" ] || short="$short-dirty"
    tags+=("$short")
  fi
fi

cli="${CONTAINER_CLI:-docker}"
if [ "$push" = true ]; then
  command=("$cli" buildx build --push)
  [ -z "$platform" ] || command+=(--platform "$platform")
else
  command=("$cli" build)
fi
command+=(--file Dockerfile --build-arg "VERSION=$version" --build-arg "REVISION=$revision")
[ -z "$source_url" ] || command+=(--build-arg "SOURCE=$source_url")
for tag in "${tags[@]}"; do command+=(--tag "$image:$tag"); done
command+=(.)

if [ "$dry_run" = true ]; then
  printf '%q ' "${command[@]}" | sed 's/ $//'
  echo
  exit 0
fi
echo "==> ${command[*]}" >&2
exec "${command[@]}"
