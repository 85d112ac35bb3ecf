import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Committer } from '../../src/pipeline/commit.ts';
import type { AuditEvent } from '../../src/pipeline/envelope.ts';
import { RedisKeys } from '../../src/pipeline/keys.ts';
import { LeaseManager } from '../../src/pipeline/lease.ts';
import { type PushCommitOptions, PushCommitter } from '../../src/pipeline/push-commit.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

let redis: TestRedis;
const keys = new RedisKeys('{test}');
const SCOPE = 'stackit:project:p-1';
const DAY = 86_400_000;
const NOW = Date.UTC(2026, 11, 2, 9, 0, 0);

const options: PushCommitOptions = {
  maxOutbox: 100,
  forgetSeenBeforeMs: NOW - 7 * DAY,
  pathsKeepAfterMs: NOW - 2 * DAY,
  pathsMax: 1000,
};

beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis.stop();
});
beforeEach(async () => {
  await redis.client.flushall();
});

function event(id: string, timeMs: number): AuditEvent {
  return {
    id,
    provider: 'stackit',
    scope: { kind: 'project', id: 'p-1' },
    time: new Date(timeMs).toISOString(),
    timeMs,
    raw: `{"id":"${id}"}`,
  };
}

describe('PushCommitter', () => {
  it('appends new events to every outbox once and recognises redeliveries', async () => {
    const committer = new PushCommitter(redis.client, keys);
    const first = await committer.commit(
      SCOPE,
      ['a', 'b'],
      [event('e1', NOW), event('e2', NOW)],
      NOW,
      options,
    );
    expect(first).toMatchObject({ outcome: 'committed', duplicates: 0, longestOutbox: 2 });
    const again = await committer.commit(
      SCOPE,
      ['a', 'b'],
      [event('e2', NOW), event('e3', NOW)],
      NOW,
      options,
    );
    expect(again.outcome === 'committed' && again.added.map((e) => e.id)).toEqual(['e3']);
    expect(await redis.client.xlen(keys.outbox('a'))).toBe(3);
    expect(await redis.client.xlen(keys.outbox('b'))).toBe(3);
    expect(await redis.client.zrange(keys.pushedIds(SCOPE), '0', '-1')).toEqual(['e1', 'e2', 'e3']);
  });

  it('shares the seen-set with the poller: an id polled before is not shipped again', async () => {
    const lease = await new LeaseManager(redis.client, keys).acquire(SCOPE, 10_000);
    if (!lease) throw new Error('no lease');
    await new Committer(redis.client, keys).commit(
      lease,
      SCOPE,
      ['a'],
      { events: [event('e1', NOW)], checkpoint: { state: {} }, forgetSeenBeforeMs: 0 },
      NOW,
    );
    const pushed = await new PushCommitter(redis.client, keys).commit(
      SCOPE,
      ['a'],
      [event('e1', NOW), event('e2', NOW)],
      NOW,
      options,
    );
    expect(pushed.outcome === 'committed' && pushed.added.map((e) => e.id)).toEqual(['e2']);
    expect(await redis.client.xlen(keys.outbox('a'))).toBe(2);
  });

  it('refuses the whole batch, writing nothing, when an outbox is full', async () => {
    const committer = new PushCommitter(redis.client, keys);
    const small = { ...options, maxOutbox: 2 };
    await committer.commit(SCOPE, ['a', 'b'], [event('e1', NOW)], NOW, small);
    await committer.commit(SCOPE, ['b'], [event('e2', NOW)], NOW, small);
    const refused = await committer.commit(SCOPE, ['a', 'b'], [event('e3', NOW)], NOW, small);
    expect(refused).toEqual({ outcome: 'outbox_full', sink: 'b', length: 2 });
    expect(await redis.client.zscore(keys.seen(SCOPE), 'e3')).toBeNull();
    expect(await redis.client.xlen(keys.outbox('a'))).toBe(1);
  });

  it('trims the seen-set of an unpolled scope by its window and leaves a polled scope’s to the poller', async () => {
    const committer = new PushCommitter(redis.client, keys);
    const old = event('old', NOW - 8 * DAY);
    await committer.commit(SCOPE, ['a'], [old, event('new', NOW)], NOW, options);
    expect(await redis.client.zrange(keys.seen(SCOPE), '0', '-1')).toEqual(['new']);
    await redis.client.hset(keys.checkpoint(SCOPE), 'state', '{}');
    await committer.commit(SCOPE, ['a'], [event('old2', NOW - 8 * DAY)], NOW, options);
    expect(await redis.client.zrange(keys.seen(SCOPE), '0', '-1')).toEqual(['old2', 'new']);
  });

  it('bounds the per-path id record by time and count', async () => {
    const committer = new PushCommitter(redis.client, keys);
    const bounded = { ...options, pathsMax: 3 };
    const events = [event('ancient', NOW - 3 * DAY), ...[1, 2, 3, 4].map((i) => event(`e${i}`, NOW + i))];
    await committer.commit(SCOPE, ['a'], events, NOW, bounded);
    expect(await redis.client.zrange(keys.pushedIds(SCOPE), '0', '-1')).toEqual(['e2', 'e3', 'e4']);
  });
});
