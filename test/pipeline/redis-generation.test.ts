import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Metrics } from '../../src/observability/metrics.ts';
import { RedisKeys } from '../../src/pipeline/keys.ts';
import { RedisGenerationWatch } from '../../src/pipeline/redis-generation.ts';
import { memoryLogger } from '../support/logger.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

let redis: TestRedis;
const keys = new RedisKeys('{test}');

beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis.stop();
});
beforeEach(async () => {
  await redis.client.flushall();
});

function watch(metrics: Metrics, onLost: () => Promise<void> = async () => {}) {
  const { log, lines } = memoryLogger();
  const w = new RedisGenerationWatch({
    redis: redis.connect(),
    keys,
    metrics,
    log,
    intervalMs: 60_000,
    onLost,
  });
  return { w, lines };
}

async function lost(metrics: Metrics): Promise<number> {
  return (await metrics.redisStateLost.get()).values[0]?.value ?? 0;
}

describe('RedisGenerationWatch', () => {
  it('writes a marker on a fresh Redis and stays quiet while it holds', async () => {
    const metrics = new Metrics();
    const { w, lines } = watch(metrics);
    await w.start();
    expect(await redis.client.get(keys.generation())).toBe(w.current);
    await w.check();
    expect(await lost(metrics)).toBe(0);
    expect(lines().filter((l) => Number(l.level) >= 50)).toEqual([]);
    // A second replica adopts the marker rather than replacing it.
    const other = watch(metrics);
    await other.w.start();
    expect(other.w.current).toBe(w.current);
    w.stop();
    other.w.stop();
  });

  it('says so in an error log and the metric when Redis comes back empty, and re-creates delivery state', async () => {
    const metrics = new Metrics();
    let recreated = 0;
    const { w, lines } = watch(metrics, async () => {
      recreated++;
    });
    await w.start();
    const first = w.current;
    await redis.client.flushall();
    await w.check();
    expect(await lost(metrics)).toBe(1);
    expect(recreated).toBe(1);
    expect(w.current).not.toBe(first);
    expect(await redis.client.get(keys.generation())).toBe(w.current);
    const errors = lines().filter((l) => l.level === 50);
    expect(errors).toHaveLength(1);
    expect(String(errors[0]?.msg)).toMatch(
      /Redis lost its state.*checkpoints restart from lookback.*duplicates/,
    );
    // Once: the new generation is the one it knows now.
    await w.check();
    expect(await lost(metrics)).toBe(1);
    w.stop();
  });

  it('notices a loss another replica noticed first (the marker was replaced)', async () => {
    const metrics = new Metrics();
    const { w } = watch(metrics);
    await w.start();
    await redis.client.set(keys.generation(), 'written-by-another-replica');
    await w.check();
    expect(await lost(metrics)).toBe(1);
    expect(w.current).toBe('written-by-another-replica');
    w.stop();
  });

  it('checks again as soon as the connection is back after Redis restarted empty', async () => {
    const metrics = new Metrics();
    const { w } = watch(metrics);
    await w.start();
    await redis.server.kill();
    // Started again without its AOF: a restart without persistence.
    for (const aof of ['appendonlydir', 'appendonly.aof']) {
      await rm(join(redis.server.dir, aof), { recursive: true, force: true });
    }
    await redis.server.restart();
    await expect.poll(() => lost(metrics), { timeout: 15_000 }).toBe(1);
    w.stop();
  });
});
