import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type Lane, type RateBucket, RateBudgets, type RateLimit } from '../../src/http/rate-budget.ts';
import { ManualClock } from '../support/manual-clock.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

// The budget's time is a manual clock: every count below follows from its arithmetic (rate, burst,
// reserve, pause), not from how quickly a busy machine lets the takers run.

let redis: TestRedis;
let replicaA: Redis;
let replicaB: Redis;
let clock: ManualClock;

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
  clock = new ManualClock();
});

const keyOf = (id: string): string => `{test}:ratelimit:${id}`;
/** A replica's budgets on the manual clock, with jitter fixed in the middle of its range. */
const budgetsOf = (replica: Redis): RateBudgets =>
  new RateBudgets(replica, keyOf, {}, { now: clock.now, sleep: clock.sleep, random: () => 0.5 });

/** Lets time pass only while everyone who is still running waits for it. */
async function whenAllAsleep(running: () => number): Promise<void> {
  await vi.waitFor(
    () => {
      if (clock.sleeping !== running()) throw new Error(`${running() - clock.sleeping} takers still busy`);
    },
    { interval: 1, timeout: 30_000 },
  );
}

/** Takers, each on its own replica's bucket, take tokens in a loop for `forMs` of virtual time. */
async function race(
  takers: ReadonlyArray<{ replica: Redis; lane: Lane }>,
  limit: RateLimit,
  forMs: number,
): Promise<number[][]> {
  const until = clock.now() + forMs;
  const stop = new AbortController();
  const granted = takers.map(() => [] as number[]);
  let running = takers.length;
  const loops = takers.map(async ({ replica, lane }, i) => {
    const bucket = budgetsOf(replica).bucket('cred:auditlog', limit);
    try {
      for (;;) {
        await bucket.take(lane, stop.signal);
        if (clock.now() >= until) return;
        granted[i]?.push(clock.now());
      }
    } catch {
      // the race is over
    } finally {
      running--;
    }
  });
  for (;;) {
    await whenAllAsleep(() => running);
    const next = clock.nextWakeMs;
    if (running === 0 || next === undefined) break;
    if (next >= until) {
      stop.abort();
      break;
    }
    clock.advanceTo(next);
  }
  await Promise.all(loops);
  return granted;
}

/** One take, with time moved on whenever it sleeps; resolves with the virtual time it was granted at. */
async function takeNow(bucket: RateBucket, lane: Lane): Promise<number> {
  let done = false;
  const take = bucket.take(lane, new AbortController().signal).finally(() => {
    done = true;
  });
  for (;;) {
    await whenAllAsleep(() => (done ? 0 : 1));
    if (done) break;
    clock.advanceTo(clock.nextWakeMs as number);
  }
  await take;
  return clock.now();
}

describe('shared request budget', () => {
  it('holds two replicas together to the rate and burst', async () => {
    const limit = { requestsPerMinute: 1_200, burst: 5 }; // 20 per second
    const started = clock.now();
    const granted = await race(
      [
        { replica: replicaA, lane: 'live' },
        { replica: replicaA, lane: 'live' },
        { replica: replicaB, lane: 'live' },
      ],
      limit,
      2_000,
    );
    const all = granted.flat().sort((x, y) => x - y);
    // Burst 5 at once, then one every 50 ms until 2 s: 44, and at most 45 (the rate's whole worth).
    expect(all.length).toBeLessThanOrEqual(45);
    expect(all.length).toBeGreaterThanOrEqual(43);
    expect(all.filter((t) => t === started)).toHaveLength(5);
    // In any one second after the burst, no more than the rate (plus one for the edges).
    for (const t of all.filter((g) => g > started)) {
      expect(all.filter((g) => g >= t && g < t + 1_000).length).toBeLessThanOrEqual(21);
    }
  });

  it('lets backfill use only what live polling leaves, keeping a reserve for it', async () => {
    const limit = { requestsPerMinute: 600, burst: 4 }; // 10 per second, reserve 2 for live
    const bucket = budgetsOf(replicaA).bucket('cred:auditlog', limit);
    expect(bucket.backfillReserve).toBe(2);
    // A full bucket of 4: backfill may take 2, then must wait while 2 stay for live.
    await bucket.take('backfill', new AbortController().signal);
    await bucket.take('backfill', new AbortController().signal);
    const waiting = new AbortController();
    const third = bucket.take('backfill', waiting.signal).catch(() => 'aborted');
    await whenAllAsleep(() => 1);
    expect((await bucket.take('live', new AbortController().signal)).waitedMs).toBe(0);
    expect((await bucket.take('live', new AbortController().signal)).waitedMs).toBe(0);
    waiting.abort();
    expect(await third).toBe('aborted');

    // Under steady live demand, backfill gets (almost) nothing; live gets the whole rate.
    await redis.client.flushall();
    const [live, backfill] = await race(
      [
        { replica: replicaA, lane: 'live' },
        { replica: replicaB, lane: 'backfill' },
      ],
      limit,
      1_500,
    );
    expect(live?.length).toBeGreaterThanOrEqual(14);
    expect(backfill?.length).toBeLessThanOrEqual(2);

    // Without live demand, backfill uses the whole rate above the reserve.
    await redis.client.flushall();
    const [alone] = await race([{ replica: replicaB, lane: 'backfill' }], limit, 1_000);
    expect(alone?.length).toBeGreaterThanOrEqual(8);
  });

  it('pauses every replica for Retry-After, and backs off exponentially when there is none', async () => {
    const limit = { requestsPerMinute: 60_000, burst: 100 };
    const a = budgetsOf(replicaA).bucket('cred:auditlog', limit);
    const b = budgetsOf(replicaB).bucket('cred:auditlog', limit);
    const pausedAt = clock.now();
    expect((await a.pause(800)).pauseMs).toBe(800);
    // The other replica's next request waits out the whole pause.
    expect(await takeNow(b, 'live')).toBeGreaterThanOrEqual(pausedAt + 800);

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
    await takeNow(a, 'live');
    await a.succeeded();
    expect((await b.pause(undefined)).pauseMs).toBeLessThanOrEqual(1_000);
  });

  it('uses Redis’s own clock when none is injected, so replicas with skewed clocks agree', async () => {
    const bucket = new RateBudgets(replicaA, keyOf).bucket('cred:auditlog', {
      requestsPerMinute: 60,
      burst: 1,
    });
    await bucket.take('live', new AbortController().signal);
    const [redisSeconds] = await redis.client.time();
    const at = Number(await redis.client.hget(keyOf('cred:auditlog'), 'at'));
    expect(Math.abs(at - Number(redisSeconds) * 1000)).toBeLessThan(60_000);
  });
});
