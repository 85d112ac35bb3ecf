import { Queue } from 'bullmq';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ScopeSpec } from '../../src/config/types.ts';
import { LeaderLock } from '../../src/pipeline/leader.ts';
import { POLL_QUEUE, type PollJobData, scheduleOffsetMs } from '../../src/pipeline/poll-queue.ts';
import { ScheduleReconciler } from '../../src/pipeline/scheduler.ts';
import { silentLogger } from '../support/logger.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

let redis: TestRedis;
let queue: Queue<PollJobData>;

beforeAll(async () => {
  redis = await startTestRedis();
  queue = new Queue<PollJobData>(POLL_QUEUE, { connection: redis.connect(), prefix: '{test}' });
});
afterAll(async () => {
  await queue.close();
  await redis.stop();
});
beforeEach(async () => {
  await redis.client.flushall();
});

function scope(id: string, intervalMs = 60_000): ScopeSpec {
  return {
    key: `stackit:project:${id}`,
    provider: 'p',
    providerType: 'stackit',
    ref: { kind: 'project', id },
    intervalMs,
    sinks: ['s'],
    settings: {},
  };
}

describe('scheduleOffsetMs', () => {
  it('gives each scope a stable phase inside its interval, spread over it', () => {
    const offsets = Array.from({ length: 1_000 }, (_, i) => scheduleOffsetMs(`stackit:project:${i}`, 60_000));
    expect(offsets.every((o) => o >= 1 && o < 60_000)).toBe(true);
    expect(scheduleOffsetMs('stackit:project:1', 60_000)).toBe(offsets[1]);
    const firstHalf = offsets.filter((o) => o < 30_000).length;
    expect(firstHalf).toBeGreaterThan(400);
    expect(firstHalf).toBeLessThan(600);
  });
});

describe('ScheduleReconciler', () => {
  it('creates one scheduler per scope, changes only what changed, removes scopes that left the config', async () => {
    const reconciler = new ScheduleReconciler(
      queue,
      new LeaderLock(redis.client, '{test}:leader', 'me', 10_000),
      silentLogger,
      60_000,
    );
    expect(await reconciler.reconcile([scope('a'), scope('b')])).toEqual({
      added: 2,
      updated: 0,
      removed: 0,
      repaired: 0,
    });
    expect(await reconciler.reconcile([scope('a'), scope('b')])).toEqual({
      added: 0,
      updated: 0,
      removed: 0,
      repaired: 0,
    });
    expect(await reconciler.reconcile([scope('a', 30_000), scope('c')])).toEqual({
      added: 1,
      updated: 1,
      removed: 1,
      repaired: 0,
    });

    const schedulers = await queue.getJobSchedulers(0, -1);
    expect(schedulers.map((s) => s.key).sort()).toEqual(['poll:stackit:project:a', 'poll:stackit:project:c']);
    const a = schedulers.find((s) => s.key === 'poll:stackit:project:a');
    expect(a?.every).toBe(30_000);
    expect(a?.offset).toBe(scheduleOffsetMs('stackit:project:a', 30_000));
    expect(a?.template?.data).toEqual({ scope: 'stackit:project:a' });
    // Each scheduler has its next poll job waiting; the removed scope has none left.
    const delayed = await queue.getDelayed();
    expect(delayed.map((j) => j.data.scope).sort()).toEqual(['stackit:project:a', 'stackit:project:c']);
    // Scopes new to the config were also queued for a poll right away, once.
    const waiting = await queue.getWaiting();
    expect(waiting.map((j) => j.data.scope).sort()).toEqual([
      'stackit:project:a',
      'stackit:project:b',
      'stackit:project:c',
    ]);
  });

  it('reconciles only while leading', async () => {
    const leader = new ScheduleReconciler(
      queue,
      new LeaderLock(redis.client, '{test}:leader', 'one', 10_000),
      silentLogger,
      60_000,
    );
    const follower = new ScheduleReconciler(
      queue,
      new LeaderLock(redis.client, '{test}:leader', 'two', 10_000),
      silentLogger,
      60_000,
    );
    leader.setScopes([scope('a')]);
    await leader.tick();
    follower.setScopes([scope('a'), scope('z')]);
    await follower.tick();
    expect((await queue.getJobSchedulers(0, -1)).map((s) => s.key)).toEqual(['poll:stackit:project:a']);
    await leader.stop(); // resigns
    await follower.tick();
    expect((await queue.getJobSchedulers(0, -1)).map((s) => s.key).sort()).toEqual([
      'poll:stackit:project:a',
      'poll:stackit:project:z',
    ]);
    await follower.stop();
  });
});

describe('ScheduleReconciler repairs', () => {
  it('restarts a scheduler whose next job a crash left unscheduled', async () => {
    const reconciler = new ScheduleReconciler(
      queue,
      new LeaderLock(redis.client, '{test}:leader', 'me', 10_000),
      silentLogger,
      60_000,
    );
    await reconciler.reconcile([scope('a', 1_000)]);
    const [job] = await queue.getDelayed();
    // A worker took the job and died before BullMQ added the next one: the job sits in `active`, no
    // job is delayed, and the scheduler's next run lies in the past.
    await redis.client.zrem('{test}:poll:delayed', job!.id!);
    await redis.client.lpush('{test}:poll:active', job!.id!);
    await redis.client.zadd('{test}:poll:repeat', Date.now() - 10_000, 'poll:stackit:project:a');
    expect(await queue.getDelayed()).toHaveLength(0);

    expect(await reconciler.reconcile([scope('a', 1_000)])).toEqual({
      added: 0,
      updated: 0,
      removed: 0,
      repaired: 1,
    });
    const delayed = await queue.getDelayed();
    expect(delayed.map((j) => j.data.scope)).toEqual(['stackit:project:a']);
    expect(await reconciler.reconcile([scope('a', 1_000)])).toEqual({
      added: 0,
      updated: 0,
      removed: 0,
      repaired: 0,
    });
  });
});
