import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RedisEvictionWatch } from '../../src/daemon/redis-config-watch.ts';
import { Metrics } from '../../src/observability/metrics.ts';
import { memoryLogger } from '../support/logger.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis.stop();
});

const gauge = async (metrics: Metrics): Promise<number | undefined> =>
  (await metrics.redisEvictionUnsafe.get()).values[0]?.value;

describe('Redis eviction policy, re-checked at run time (§13)', () => {
  it('notices a change to an evicting policy: an error line once and the gauge, both cleared when it is undone', async () => {
    const { log, lines } = memoryLogger();
    const metrics = new Metrics();
    const watch = new RedisEvictionWatch(redis.client, log, metrics);
    watch.start();
    try {
      await watch.check();
      expect(await gauge(metrics)).toBe(0);

      await redis.client.config('SET', 'maxmemory-policy', 'allkeys-lru');
      await watch.check();
      await watch.check();
      expect(await gauge(metrics)).toBe(1);
      const errors = lines().filter((l) => l.level === 50);
      expect(errors).toHaveLength(1);
      expect(String(errors[0]?.msg)).toContain('"allkeys-lru"');

      await redis.client.config('SET', 'maxmemory-policy', 'noeviction');
      await watch.check();
      expect(await gauge(metrics)).toBe(0);
      expect(lines().some((l) => String(l.msg).includes('noeviction again'))).toBe(true);
    } finally {
      watch.stop();
      await redis.client.config('SET', 'maxmemory-policy', 'noeviction');
    }
  });

  it('re-checks on its own, on its interval', async () => {
    const { log } = memoryLogger();
    const metrics = new Metrics();
    const watch = new RedisEvictionWatch(redis.client, log, metrics, 20);
    watch.start();
    try {
      await redis.client.config('SET', 'maxmemory-policy', 'volatile-ttl');
      await vi.waitFor(async () => expect(await gauge(metrics)).toBe(1), { timeout: 30_000 });
    } finally {
      watch.stop();
      await redis.client.config('SET', 'maxmemory-policy', 'noeviction');
    }
  });
});
