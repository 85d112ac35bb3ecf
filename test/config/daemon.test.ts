import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { formatIssue } from '../../src/config/errors.ts';
import { BASE_ENV, issueAt, loadError, loadOk, MINIMAL, yaml } from './helpers.ts';

const withDaemon = (daemon: string) => `daemon:\n${daemon.replace(/^/gm, '  ')}\n${MINIMAL}`;

describe('daemon settings', () => {
  it('lets REDIS_URL, LOG_LEVEL and METRICS_PORT override the file', () => {
    const text = withDaemon(yaml`
      redis: { url: "redis://file-redis:6379" }
      log: { level: warn }
      metrics: { port: 9000 }
    `);
    expect(loadOk(text).config.daemon).toMatchObject({
      redis: { url: 'redis://file-redis:6379' },
      log: { level: 'warn' },
      metrics: { port: 9000 },
    });
    const { config } = loadOk(text, {
      env: { ...BASE_ENV, REDIS_URL: 'rediss://env-redis:6380/1', LOG_LEVEL: 'debug', METRICS_PORT: '9100' },
    });
    expect(config.daemon).toMatchObject({
      redis: { url: 'rediss://env-redis:6380/1' },
      log: { level: 'debug' },
      metrics: { port: 9100 },
    });
  });

  it('reads every setting from its environment variable, durations included', () => {
    const { config } = loadOk(MINIMAL, {
      env: {
        ...BASE_ENV,
        INSTANCE_ID: 'pod-7',
        DATA_DIR: '/state',
        REDIS_PREFIX: '{x}:',
        METRICS_HOST: '::',
        METRICS_PER_SCOPE_LABELS: 'false',
        POLL_CONCURRENCY: '2',
        POLL_LEASE_TTL: '90s',
        POLL_INTERVAL: '1h',
        POLL_NOT_FOUND_RECHECK: '5m',
        BACKFILL_CONCURRENCY: '0',
        BACKFILL_SLICE: '30s',
        OUTBOX_MAX_LENGTH: '1000',
        DELIVERY_BATCH_SIZE: '50',
        DELIVERY_RETRY_INITIAL: '2s',
        DELIVERY_RETRY_MAX: '10m',
        DELIVERY_CONSUMER_TIMEOUT: '1m',
        SHUTDOWN_TIMEOUT: '20s',
      },
    });
    expect(config.daemon).toEqual({
      instanceId: 'pod-7',
      dataDir: '/state',
      redis: { url: '', prefix: '{x}:' },
      log: { level: 'info' },
      metrics: { host: '::', port: 9464, perScopeLabels: false },
      poll: { concurrency: 2, leaseTtlMs: 90_000, intervalMs: 3_600_000, notFoundRecheckMs: 300_000 },
      backfill: { concurrency: 0, sliceMs: 30_000 },
      outbox: { maxLength: 1_000 },
      delivery: { batchSize: 50, retryInitialMs: 2_000, retryMaxMs: 600_000, consumerTimeoutMs: 60_000 },
      shutdownTimeoutMs: 20_000,
    });
    expect(config.scopes[0]?.intervalMs).toBe(3_600_000);
  });

  it('says when a bad value came from the environment', () => {
    const error = loadError(withDaemon('metrics: { port: 9000 }'), {
      env: { ...BASE_ENV, METRICS_PORT: '80x', LOG_LEVEL: 'loud', POLL_INTERVAL: '60' },
    });
    expect(error.issues).toEqual([
      {
        path: 'daemon.log.level',
        env: 'LOG_LEVEL',
        message: 'must be one of fatal, error, warn, info, debug, trace, silent',
      },
      { path: 'daemon.metrics.port', env: 'METRICS_PORT', message: 'must be a port number (0-65535)' },
      {
        path: 'daemon.poll.interval',
        env: 'POLL_INTERVAL',
        message: 'must be a duration such as 500ms, 60s, 15m or 1h30m',
      },
    ]);
    expect(formatIssue(issueAt(error, 'daemon.metrics.port'))).toBe(
      'daemon.metrics.port (from env METRICS_PORT): must be a port number (0-65535)',
    );
  });

  it('reports bad file values with their line, and unknown keys with a hint', () => {
    const error = loadError(
      yaml`
      daemon:
        metrics:
          port: 70000
          hots: localhost
        poll:
          interval: 60
          leaseTtl: 500ms
          concurrency: "8"
        redis:
          prefix: auditlog
        delivery: 5
        log:
          level: [info]
        logging: {}
    ` + MINIMAL,
    );
    expect(error.issues.map((i) => [i.path, i.line, i.column, i.message])).toEqual([
      ['daemon.metrics.port', 3, 11, 'must be at most 65535'],
      ['daemon.metrics.hots', 4, 5, 'unknown key "hots" (did you mean "host"?)'],
      [
        'daemon.poll.interval',
        6,
        15,
        'must be a duration with a unit, such as 60s or 15m (a bare number is ambiguous)',
      ],
      ['daemon.poll.leaseTtl', 7, 15, 'must be at least 1s'],
      ['daemon.poll.concurrency', 8, 18, 'must be a number (written without quotes)'],
      [
        'daemon.redis.prefix',
        10,
        13,
        'must contain a {hash tag} such as {auditlog}, and no spaces, so every key a script touches shares one Redis Cluster slot',
      ],
      ['daemon.delivery', 11, 13, 'must be a mapping (got a number)'],
      ['daemon.log.level', 13, 12, 'must be a single value, not a list'],
      ['daemon.logging', 14, 3, 'unknown key "logging"'],
    ]);
  });

  it(`resolves \${VAR} in daemon values, and names a missing one`, () => {
    const text = withDaemon(yaml`
      dataDir: \${STATE_DIR:-/var/lib/shipper}/data
      redis: { url: "redis://:\${REDIS_PASSWORD}@redis:6379" }
      metrics: { port: "\${PORT}" }
    `);
    const { config } = loadOk(text, { env: { ...BASE_ENV, REDIS_PASSWORD: 'pw', PORT: '9999' } });
    expect(config.daemon.dataDir).toBe('/var/lib/shipper/data');
    expect(config.daemon.redis.url).toBe('redis://:pw@redis:6379');
    expect(config.daemon.metrics.port).toBe(9999);

    const error = loadError(text, { env: { ...BASE_ENV, PORT: '9999' } });
    expect(error.issues).toEqual([
      {
        path: 'daemon.redis.url',
        line: 3,
        column: 17,
        message: `environment variable \${REDIS_PASSWORD} is not set`,
      },
    ]);
  });

  it('refuses a retryMax shorter than retryInitial', () => {
    const error = loadError(withDaemon('delivery: { retryInitial: 10s, retryMax: 5s }'));
    expect(error.issues).toEqual([
      {
        path: 'daemon.delivery.retryMax',
        line: 2,
        column: 44,
        message: 'must not be shorter than delivery.retryInitial (10s)',
      },
    ]);
  });

  it('refuses a daemon section that is not a mapping', () => {
    expect(loadError(`daemon: true\n${MINIMAL}`).issues).toEqual([
      { path: 'daemon', line: 1, column: 9, message: 'must be a mapping (got true/false)' },
    ]);
  });

  it('defaults instanceId to hostname-pid, warns about the embedded Redis only when it is used', () => {
    const embedded = loadOk(MINIMAL);
    expect(embedded.config.daemon.instanceId).toMatch(new RegExp(`-${process.pid}$`));
    expect(embedded.warnings).toHaveLength(1);
    expect(embedded.warnings[0]).toMatch(
      /^daemon\.redis\.url is empty: an embedded redis-server will run in \.\/data/,
    );
    expect(embedded.warnings[0]).toContain('set REDIS_URL');

    const shared = loadOk(MINIMAL, { env: { ...BASE_ENV, REDIS_URL: 'redis://redis:6379' } });
    expect(shared.warnings).toEqual([]);
  });

  it('never echoes the Redis URL, and masks its password in dumps', () => {
    const password = 'r3dis-PASSWORD-do-not-print';
    const bad = loadError(MINIMAL, { env: { ...BASE_ENV, REDIS_URL: `http://:${password}@redis:6379` } });
    expect(bad.issues).toEqual([
      {
        path: 'daemon.redis.url',
        env: 'REDIS_URL',
        message:
          'must be redis://host:port, rediss://…, redis+sentinel://s1:26379,s2,s3/MASTER, redis+cluster://n1:6379,n2,n3 (rediss+… for TLS), or empty for the embedded redis-server',
      },
    ]);
    expect(bad.format()).not.toContain(password);
    expect(JSON.stringify(bad.issues)).not.toContain(password);

    const { config } = loadOk(MINIMAL, {
      env: { ...BASE_ENV, REDIS_URL: `redis://app:${password}@redis:6379/0` },
    });
    expect(config.daemon.redis.url).toBe(`redis://app:${password}@redis:6379/0`);
    const dump = JSON.stringify(config);
    expect(dump).not.toContain(password);
    expect(dump).toContain('"url":"redis://app:***@redis:6379/0"');
    expect(inspect(config, { depth: 10 })).not.toContain(password);
  });
});
