# syntax=docker/dockerfile:1
# auditlog-shipper: Node 24 LTS, production dependencies only, non-root, read-only-root friendly.

ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY scripts/build-production.sh scripts/
COPY src src
RUN scripts/build-production.sh /out

FROM ${NODE_IMAGE}
# scripts/build-image.sh passes these from package.json and git (the build context has no .git).
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/auditlog-shipper/auditlog-shipper
LABEL org.opencontainers.image.title="auditlog-shipper" \
      org.opencontainers.image.description="Ships cloud providers' audit logs, every event once and unaltered, to Loki, Elasticsearch/OpenSearch, S3 and files." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
# tini as PID 1: forwards SIGTERM to node and reaps zombies (node as PID 1 does neither by default).
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini \
  && rm -rf /var/lib/apt/lists/*
# V8 sizes its heap from the host's memory and grows it lazily: on a large node an idle-looking shipper
# reached ~500 MiB RSS at 10,000 scopes with ~60 MiB live. Capped, it stays near 230 MiB at the same CPU
# (docs/benchmarks.md), well inside the chart's 512Mi limit. Raise both together for huge fleets.
ENV NODE_ENV=production \
    NODE_OPTIONS="--max-old-space-size=256 --max-semi-space-size=8" \
    DATA_DIR=/var/lib/auditlog-shipper \
    AUDITLOG_REVISION="${REVISION}"
WORKDIR /app
COPY --from=build /out /app
COPY config/example.yaml /app/config/example.yaml
# The only writable place the shipper needs (embedded Redis, file sinks); mount a volume here.
RUN mkdir -p /var/lib/auditlog-shipper && chown node:node /var/lib/auditlog-shipper
USER node
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.METRICS_PORT||9464)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/dist/cli/main.js"]
CMD ["run", "-c", "/etc/auditlog-shipper/config.yaml"]
