/**
 * Issue 9 §13: a request budget paused by a 429 with a long Retry-After must not hold the poll workers
 * of every scope on that credential: take() gives up at once when the pause is longer than the caller
 * may wait, saying how long it is.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BudgetPausedError, RateBudgets } from '../../src/http/rate-budget.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis.stop();
});

describe('a paused request budget (issue 9 §13)', () => {
  it('rejects a take that would sit out a pause longer than the caller allows, naming the wait', async () => {
    const budgets = new RateBudgets(redis.client, (id) => `{test}:ratelimit:${id}`);
    const bucket = budgets.bucket('cred:auditlog', { requestsPerMinute: 600, burst: 10 });
    await bucket.pause(300_000);
    const taken = bucket.take('live', AbortSignal.timeout(60_000), 10_000);
    await expect(taken).rejects.toBeInstanceOf(BudgetPausedError);
    const error = (await taken.catch((e: unknown) => e)) as BudgetPausedError;
    expect(error.waitMs).toBeGreaterThan(10_000);
    expect(error.waitMs).toBeLessThanOrEqual(300_000);
    expect(error.message).toMatch(/^the request budget cred:auditlog is paused for \d+ s after a 429$/);
  });

  it('still paces ordinary waits (no pause) instead of giving up', async () => {
    const budgets = new RateBudgets(redis.client, (id) => `{test}:ratelimit:${id}`);
    // One token, refilled once a minute: the second take must wait, not fail, although 60 s > 10 s.
    const bucket = budgets.bucket('cred:slow', { requestsPerMinute: 1, burst: 1 });
    await bucket.take('live', AbortSignal.timeout(60_000), 10_000);
    const second = bucket.take('live', AbortSignal.timeout(500), 10_000);
    await expect(second).rejects.not.toBeInstanceOf(BudgetPausedError);
  });
});
