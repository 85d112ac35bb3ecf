import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Committer, LeaseLostError } from '../../src/pipeline/commit.ts';
import type { AuditEvent } from '../../src/pipeline/envelope.ts';
import { RedisKeys } from '../../src/pipeline/keys.ts';
import { LeaseManager } from '../../src/pipeline/lease.ts';
import { ScopeStateStore } from '../../src/pipeline/scope-state.ts';
import type { Page } from '../../src/sources/source.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

let redis: TestRedis;
const keys = new RedisKeys('{test}');
const SCOPE = 'stackit:project:p-1';

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

function page(events: AuditEvent[], hwm: number, forgetBefore = 0): Page {
  return { events, checkpoint: { state: { v: 1, hwm }, watermarkMs: hwm }, forgetSeenBeforeMs: forgetBefore };
}

describe('LeaseManager', () => {
  it('gives a scope to one holder at a time, with increasing fencing tokens', async () => {
    const leases = new LeaseManager(redis.client, keys);
    const first = await leases.acquire(SCOPE, 10_000);
    expect(first).toBeDefined();
    expect(await leases.acquire(SCOPE, 10_000)).toBeUndefined();
    await first?.release();
    const second = await leases.acquire(SCOPE, 10_000);
    const counter = (token: string | undefined): number => Number(token?.split('-')[0]);
    expect(counter(second?.token)).toBeGreaterThan(counter(first?.token));
  });

  it('never hands out a token twice, even after Redis lost the counter', async () => {
    const leases = new LeaseManager(redis.client, keys);
    const committer = new Committer(redis.client, keys);
    const before = (await leases.acquire(SCOPE, 10_000))!;
    // A host crash rolls the AOF back by its last second: the counter's increment and the lease are gone.
    await redis.client.set(keys.fence(), '0');
    await redis.client.del(keys.lease(SCOPE));
    const after = (await leases.acquire(SCOPE, 10_000))!;
    expect(after.token).not.toBe(before.token);
    // The poll that held the scope before the crash is fenced off; the new holder commits.
    await expect(committer.commit(before, SCOPE, ['a'], page([event('e1', 1)], 5), 9)).rejects.toBeInstanceOf(
      LeaseLostError,
    );
    expect(await redis.client.exists(keys.outbox('a'))).toBe(0);
    await committer.commit(after, SCOPE, ['a'], page([event('e1', 1)], 5), 9);
    expect(await redis.client.xlen(keys.outbox('a'))).toBe(1);
    // And after a loss of everything (an empty replica), the same holds.
    await redis.client.flushall();
    const fresh = (await leases.acquire(SCOPE, 10_000))!;
    expect([before.token, after.token]).not.toContain(fresh.token);
    await expect(committer.commit(after, SCOPE, ['a'], page([event('e2', 2)], 6), 10)).rejects.toBeInstanceOf(
      LeaseLostError,
    );
  });

  it('lets an expired lease go to the next poll and refuses the old holder’s renewal and release', async () => {
    const leases = new LeaseManager(redis.client, keys);
    const stale = await leases.acquire(SCOPE, 50);
    await new Promise((r) => setTimeout(r, 80));
    const fresh = await leases.acquire(SCOPE, 10_000);
    expect(fresh).toBeDefined();
    expect(await stale?.renew()).toBe(false);
    await stale?.release();
    expect(await redis.client.get(keys.lease(SCOPE))).toBe(fresh?.token);
  });

  it('keepAlive reports a lost lease', async () => {
    const leases = new LeaseManager(redis.client, keys);
    const lease = await leases.acquire(SCOPE, 300);
    const lost = new Promise<string>((resolve) => lease?.keepAlive(resolve));
    await redis.client.del(keys.lease(SCOPE));
    expect(await lost).toContain('taken over');
  });
});

describe('Committer', () => {
  it('adds unseen events to every outbox once, moves the checkpoint, and reports duplicates', async () => {
    const leases = new LeaseManager(redis.client, keys);
    const committer = new Committer(redis.client, keys);
    const lease = (await leases.acquire(SCOPE, 10_000))!;
    const t = Date.UTC(2026, 0, 1);

    const first = await committer.commit(
      lease,
      SCOPE,
      ['a', 'b'],
      page([event('e1', t), event('e2', t + 1)], t + 10),
      t + 20,
    );
    expect(first.added.map((e) => e.id)).toEqual(['e1', 'e2']);
    expect(first.duplicates).toBe(0);
    expect(first.longestOutbox).toBe(2);

    const second = await committer.commit(
      lease,
      SCOPE,
      ['a', 'b'],
      page([event('e2', t + 1), event('e3', t + 2), event('e3', t + 2)], t + 30),
      t + 40,
    );
    expect(second.added.map((e) => e.id)).toEqual(['e3']);
    expect(second.duplicates).toBe(2);

    for (const sink of ['a', 'b']) {
      const entries = await redis.client.xrange(keys.outbox(sink), '-', '+');
      expect(entries.map(([, fields]) => fields[1])).toEqual(['e1', 'e2', 'e3']);
      const fields = entries[0]![1];
      expect(fields).toEqual([
        'id',
        'e1',
        'scope',
        SCOPE,
        't',
        String(t),
        'seen',
        String(t + 20),
        'line',
        expect.any(String),
      ]);
      expect(JSON.parse(fields[9]!).raw).toEqual({ id: 'e1' });
    }
    const stored = await new ScopeStateStore(redis.client, keys).checkpoint(SCOPE);
    expect(stored).toMatchObject({
      checkpoint: { state: { v: 1, hwm: t + 30 }, watermarkMs: t + 30 },
      committed: 3,
      token: lease.token,
    });
  });

  it('refuses a page from a poll that lost its lease, changing nothing', async () => {
    const leases = new LeaseManager(redis.client, keys);
    const committer = new Committer(redis.client, keys);
    const stale = (await leases.acquire(SCOPE, 10_000))!;
    await redis.client.del(keys.lease(SCOPE));
    const current = (await leases.acquire(SCOPE, 10_000))!;
    await expect(committer.commit(stale, SCOPE, ['a'], page([event('e1', 1)], 5), 9)).rejects.toBeInstanceOf(
      LeaseLostError,
    );
    expect(await redis.client.exists(keys.outbox('a'), keys.checkpoint(SCOPE), keys.seen(SCOPE))).toBe(0);
    await committer.commit(current, SCOPE, ['a'], page([event('e1', 1)], 5), 9);
    expect(await redis.client.xlen(keys.outbox('a'))).toBe(1);
  });

  it('trims the seen-set below the horizon, so it stays bounded', async () => {
    const leases = new LeaseManager(redis.client, keys);
    const committer = new Committer(redis.client, keys);
    const lease = (await leases.acquire(SCOPE, 10_000))!;
    await committer.commit(lease, SCOPE, ['a'], page([event('old', 100), event('mid', 200)], 300, 0), 1);
    await committer.commit(lease, SCOPE, ['a'], page([event('new', 400)], 500, 200), 2);
    expect(await redis.client.zrange(keys.seen(SCOPE), '0', '-1')).toEqual(['mid', 'new']);
  });
});
