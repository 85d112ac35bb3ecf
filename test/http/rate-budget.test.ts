import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Lane, RateBudgets } from '../../src/http/rate-budget.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

let redis: TestRedis;
let replicaA: Redis;
let replicaB: Redis;

beforeAll(async () => {
  redis = await startTestRedis();
  replicaA = redis.connect();
  replicaB = redis.connect();
});
afterAll(async () => {
  await redis.stop();
});
beforeEach(async () => {
  await redis.client.flushall();
});

const keyOf = (id: string): string => `{test}:ratelimit:${id}`;

/** Takes tokens in a loop until `untilMs`, recording when each was granted. */
async function hammer(
  budgets: RateBudgets,
  lane: Lane,
  limit: { requestsPerMinute: number; burst: number },
  untilMs: number,
  granted: number[],
) {
  const bucket = budgets.bucket('cred:auditlog', limit);
  const signal = AbortSignal.timeout(untilMs - Date.now());
  try {
    for (;;) {
      await bucket.take(lane, signal);
      if (Date.now() > untilMs) return;
      granted.push(Date.now());
    }
  } catch {
    // the deadline aborted a wait
  }
}

describe('shared request budget', () => {
  it('holds two replicas together to the rate and burst', async () => {
    const limit = { requestsPerMinute: 1_200, burst: 5 }; // 20 per second
    const granted: number[] = [];
    const started = Date.now();
    const until = started + 2_000;
    await Promise.all([
      hammer(new RateBudgets(replicaA, keyOf), 'live', limit, until, granted),
      hammer(new RateBudgets(replicaA, keyOf), 'live', limit, until, granted),
      hammer(new RateBudgets(replicaB, keyOf), 'live', limit, until, granted),
    ]);
    // Burst 5 plus 20/s over 2 s: 45 at most (and not far below: the budget is used, not wasted).
    expect(granted.length).toBeLessThanOrEqual(46);
    expect(granted.length).toBeGreaterThanOrEqual(35);
    // In any one second after the burst, no more than the rate (plus one for the edges).
    for (const t of granted.filter((g) => g >= started + 500 && g <= until - 1_000)) {
      expect(granted.filter((g) => g >= t && g < t + 1_000).length).toBeLessThanOrEqual(21);
    }
  });

  it('lets backfill use only what live polling leaves, keeping a reserve for it', async () => {
    const limit = { requestsPerMinute: 600, burst: 4 }; // 10 per second, reserve 2 for live
    const budgets = new RateBudgets(replicaA, keyOf);
    const bucket = budgets.bucket('cred:auditlog', limit);
    expect(bucket.backfillReserve).toBe(2);
    const signal = new AbortController().signal;
    // A full bucket of 4: backfill may take 2, then must wait while 2 stay for live.
    await bucket.take('backfill', signal);
    await bucket.take('backfill', signal);
    const started = Date.now();
    await bucket.take('live', signal);
    await bucket.take('live', signal);
    expect(Date.now() - started).toBeLessThan(50);

    // Under steady live demand, backfill gets (almost) nothing; live gets the whole rate.
    await redis.client.flushall();
    const live: number[] = [];
    const backfill: number[] = [];
    const until = Date.now() + 1_500;
    await Promise.all([
      hammer(new RateBudgets(replicaA, keyOf), 'live', limit, until, live),
      hammer(new RateBudgets(replicaB, keyOf), 'backfill', limit, until, backfill),
    ]);
    expect(live.length).toBeGreaterThanOrEqual(14);
    expect(backfill.length).toBeLessThanOrEqual(2);

    // Without live demand, backfill uses the whole rate.
    await redis.client.flushall();
    const alone: number[] = [];
    await hammer(new RateBudgets(replicaB, keyOf), 'backfill', limit, Date.now() + 1_000, alone);
    expect(alone.length).toBeGreaterThanOrEqual(8);
  });

  it('pauses every replica for Retry-After, and backs off exponentially when there is none', async () => {
    const limit = { requestsPerMinute: 60_000, burst: 100 };
    const a = new RateBudgets(replicaA, keyOf).bucket('cred:auditlog', limit);
    const b = new RateBudgets(replicaB, keyOf).bucket('cred:auditlog', limit);
    const signal = new AbortController().signal;
    expect((await a.pause(800)).pauseMs).toBe(800);
    const started = Date.now();
    await b.take('live', signal);
    expect(Date.now() - started).toBeGreaterThanOrEqual(700);

    // No Retry-After: 1 s doubling per 429 in a row (the Retry-After one counted), jitter in its upper half.
    const second = await a.pause(undefined);
    const third = await b.pause(undefined);
    const fourth = await a.pause(undefined);
    expect([second.strikes, third.strikes, fourth.strikes]).toEqual([2, 3, 4]);
    expect(second.pauseMs).toBeGreaterThanOrEqual(1_000);
    expect(third.pauseMs).toBeGreaterThanOrEqual(2_000);
    expect(fourth.pauseMs).toBeGreaterThanOrEqual(4_000);
    expect(fourth.pauseMs).toBeLessThanOrEqual(8_000);
    // A success resets the strikes: the next backoff starts small again.
    await redis.client.hset(keyOf('cred:auditlog'), 'pausedUntil', 0);
    await a.take('live', signal);
    await a.succeeded();
    expect((await b.pause(undefined)).pauseMs).toBeLessThanOrEqual(1_000);
  });
});
