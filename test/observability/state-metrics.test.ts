import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScopeSpec } from '../../src/config/types.ts';
import { Metrics } from '../../src/observability/metrics.ts';
import { registerStateMetrics } from '../../src/observability/state-metrics.ts';
import { RedisKeys } from '../../src/pipeline/keys.ts';
import { OutboxMonitor } from '../../src/pipeline/outbox.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { seedScope } from '../support/state.ts';

let redis: TestRedis;
let queue: Queue;
const keys = new RedisKeys('{sm}');
const scope = (key: string): ScopeSpec => ({
  key,
  provider: 'p',
  providerType: 'stackit',
  ref: { kind: 'project', id: key },
  intervalMs: 60_000,
  sinks: ['archive'],
  settings: {},
});

beforeAll(async () => {
  redis = await startTestRedis();
  queue = new Queue('poll', { connection: redis.connect(), prefix: '{sm}' });
  await queue.add('poll', { scope: 'x' }, { delay: 60_000 });
  const now = Date.now();
  await seedScope(redis.client, keys, 'a', { events: 4, watermarkMs: now - 120_000, sinks: ['archive'] });
  await seedScope(redis.client, keys, 'b', {
    events: 1,
    watermarkMs: now - 10_000,
    sinks: ['archive'],
    failed: 'boom',
  });
});
afterAll(async () => {
  await queue.close();
  await redis.stop();
});

function sample(text: string, metric: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${metric}{`) && l.includes(labels));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

describe('state metrics (read from Redis at scrape time)', () => {
  it('reports lag and failures per scope, outbox depth and age, and queue depths', async () => {
    const metrics = new Metrics();
    registerStateMetrics({
      redis: redis.client,
      keys,
      outbox: new OutboxMonitor(redis.client, keys),
      metrics,
      scopes: () => [scope('a'), scope('b')],
      sinks: () => ['archive'],
      queues: [queue],
    });
    const text = await metrics.scrape();
    expect(sample(text, 'auditlog_checkpoint_lag_seconds', 'scope="a"')).toBeGreaterThanOrEqual(120);
    expect(sample(text, 'auditlog_checkpoint_lag_seconds', 'scope="b"')).toBeLessThan(60);
    expect(sample(text, 'auditlog_scope_consecutive_failures', 'scope="b"')).toBe(2);
    expect(sample(text, 'auditlog_outbox_length', 'sink="archive"')).toBe(5);
    expect(sample(text, 'auditlog_outbox_oldest_age_seconds', 'sink="archive"')).toBeGreaterThanOrEqual(0);
    expect(sample(text, 'auditlog_queue_jobs', 'state="delayed"')).toBe(1);
  });

  it('reports the worst lag and the number of failing scopes per provider when per-scope labels are off', async () => {
    const metrics = new Metrics({ perScope: false });
    registerStateMetrics({
      redis: redis.client,
      keys,
      outbox: new OutboxMonitor(redis.client, keys),
      metrics,
      scopes: () => [scope('a'), scope('b')],
      sinks: () => [],
      queues: [],
    });
    const text = await metrics.scrape();
    expect(text).not.toContain('scope="a"');
    expect(sample(text, 'auditlog_checkpoint_lag_seconds', 'scope=""')).toBeGreaterThanOrEqual(120);
    expect(sample(text, 'auditlog_scope_consecutive_failures', 'scope=""')).toBe(1);
  });

  it('counts a scrape whose Redis reads failed instead of failing the scrape', async () => {
    const metrics = new Metrics();
    metrics.beforeScrape(async () => {
      throw new Error('ECONNREFUSED');
    });
    const text = await metrics.scrape();
    expect(/^auditlog_metrics_state_read_errors_total (\d+)$/m.exec(text)?.[1]).toBe('1');
  });
});
