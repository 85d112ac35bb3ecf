import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ScopeSpec } from '../../src/config/types.ts';
import { Metrics } from '../../src/observability/metrics.ts';
import { Committer } from '../../src/pipeline/commit.ts';
import { type AuditEvent, sha256Hex } from '../../src/pipeline/envelope.ts';
import { RedisKeys } from '../../src/pipeline/keys.ts';
import { type Lease, LeaseManager } from '../../src/pipeline/lease.ts';
import { OutboxMonitor } from '../../src/pipeline/outbox.ts';
import { Poller } from '../../src/pipeline/poller.ts';
import { ScopeStateStore } from '../../src/pipeline/scope-state.ts';
import type { Page, Source } from '../../src/sources/source.ts';
import { memoryLogger } from '../support/logger.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

/** Issue 9 §3: the same event id with other bytes is a conflict, delivered and flagged, never dropped. */
let redis: TestRedis;
const keys = new RedisKeys('{test}');
const SCOPE = 'stackit:project:p-1';
const T = Date.UTC(2026, 0, 1);

beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis.stop();
});
beforeEach(async () => {
  await redis.client.flushall();
});

function event(id: string, raw: string, timeMs = T): AuditEvent {
  return {
    id,
    provider: 'stackit',
    scope: { kind: 'project', id: 'p-1' },
    time: new Date(timeMs).toISOString(),
    timeMs,
    raw,
  };
}

function page(events: AuditEvent[], forgetBefore = 0): Page {
  return { events, checkpoint: { state: { v: 1 }, watermarkMs: T }, forgetSeenBeforeMs: forgetBefore };
}

async function outbox(sink = 'a'): Promise<Array<{ id: string; line: Record<string, unknown> }>> {
  const entries = await redis.client.xrange(keys.outbox(sink), '-', '+');
  return entries.map(([, f]) => ({ id: f[1] as string, line: JSON.parse(f[9] as string) }));
}

async function lease(): Promise<Lease> {
  return (await new LeaseManager(redis.client, keys).acquire(SCOPE, 10_000))!;
}

const A = '{"id":"e1","v":"real"}';
const B = '{"id":"e1","v":"forged"}';

describe('Committer: same id, different bytes', () => {
  it('delivers the second copy under a derived id, flagged with the first copy’s digest', async () => {
    const committer = new Committer(redis.client, keys);
    const held = await lease();
    await committer.commit(held, SCOPE, ['a', 'b'], page([event('e1', A)]), T);
    const second = await committer.commit(held, SCOPE, ['a', 'b'], page([event('e1', B)]), T + 1);

    const variantId = `e1~sha256:${sha256Hex(B)}`;
    expect(second.added.map((e) => e.id)).toEqual([variantId]);
    expect(second.duplicates).toBe(0);
    expect(second.conflicts).toEqual([
      { event: expect.objectContaining({ id: variantId, originalId: 'e1' }), firstRawSha256: sha256Hex(A) },
    ]);
    for (const sink of ['a', 'b']) {
      const lines = await outbox(sink);
      expect(lines.map((l) => l.id)).toEqual(['e1', variantId]);
      expect(lines[1]?.line).toMatchObject({
        id: variantId,
        originalId: 'e1',
        rawSha256: sha256Hex(B),
        raw: { id: 'e1', v: 'forged' },
      });
      expect(lines[1]?.line.anomalies).toEqual([
        expect.stringMatching(new RegExp(`^id_conflict: id "e1" .*rawSha256 ${sha256Hex(A)}`)),
      ]);
      expect(lines[0]?.line.originalId).toBeUndefined();
    }
  });

  it('keeps both copies when they arrive in one page, in either order', async () => {
    const committer = new Committer(redis.client, keys);
    const held = await lease();
    const result = await committer.commit(held, SCOPE, ['a'], page([event('e1', B), event('e1', A)]), T);
    expect(result.added.map((e) => e.id)).toEqual(['e1', `e1~sha256:${sha256Hex(A)}`]);
    expect(result.conflicts[0]?.firstRawSha256).toBe(sha256Hex(B));
  });

  it('treats re-reads of either copy as ordinary duplicates', async () => {
    const committer = new Committer(redis.client, keys);
    const held = await lease();
    await committer.commit(held, SCOPE, ['a'], page([event('e1', A), event('e1', B)]), T);
    const again = await committer.commit(held, SCOPE, ['a'], page([event('e1', B), event('e1', A)]), T + 1);
    expect(again.added).toEqual([]);
    expect(again.conflicts).toEqual([]);
    expect(again.duplicates).toBe(2);
    expect(await redis.client.xlen(keys.outbox('a'))).toBe(2);
  });

  it('reads a seen-set written before digests were kept: an id alone stays a duplicate', async () => {
    const committer = new Committer(redis.client, keys);
    const held = await lease();
    await redis.client.zadd(keys.seen(SCOPE), T, 'e1');
    const result = await committer.commit(held, SCOPE, ['a'], page([event('e1', B), event('e2', A)]), T);
    expect(result.added.map((e) => e.id)).toEqual(['e2']);
    expect(result.duplicates).toBe(1);
  });

  it('judges again when another writer committed the id between its read and the script', async () => {
    const held = await lease();
    // A client whose first pre-read is followed, before the script runs, by another writer's commit
    // of the same id with other bytes (e.g. a push receiver, which holds no lease).
    let raced = false;
    const racing = new Proxy(redis.client, {
      get(target, prop, receiver) {
        if (prop !== 'pipeline') return Reflect.get(target, prop, receiver);
        return () => {
          const pipeline = target.pipeline();
          const exec = pipeline.exec.bind(pipeline);
          pipeline.exec = async () => {
            const result = await exec();
            if (!raced) {
              raced = true;
              await target.zadd(keys.seen(SCOPE), T, 'e1');
              await target.hset(keys.seenDigests(SCOPE), 'e1', sha256Hex(A));
            }
            return result;
          };
          return pipeline;
        };
      },
    });
    const committer = new Committer(racing, keys);
    const result = await committer.commit(held, SCOPE, ['a'], page([event('e1', B)]), T);
    expect(raced).toBe(true);
    expect(result.added.map((e) => e.id)).toEqual([`e1~sha256:${sha256Hex(B)}`]);
    expect(result.conflicts[0]?.firstRawSha256).toBe(sha256Hex(A));
  });

  it('trims the digests together with the seen-set', async () => {
    const committer = new Committer(redis.client, keys);
    const held = await lease();
    await committer.commit(held, SCOPE, ['a'], page([event('old', A, 100), event('new', B, 400)]), T);
    await committer.commit(held, SCOPE, ['a'], page([], 200), T);
    expect(await redis.client.zrange(keys.seen(SCOPE), '0', '-1')).toEqual(['new']);
    expect(await redis.client.hkeys(keys.seenDigests(SCOPE))).toEqual(['new']);
  });
});

describe('Poller: an id conflict is counted and logged', () => {
  it('counts it in a metric and warns with provider, scope and id', async () => {
    const pages = [[event('e1', A)], [event('e1', B)]];
    const source: Source = {
      async *pull() {
        yield page(pages.shift() ?? []);
      },
      async close() {},
    };
    const { log, lines } = memoryLogger();
    const metrics = new Metrics();
    const scope: ScopeSpec = {
      key: SCOPE,
      provider: 'sim',
      providerType: 'stackit',
      ref: { kind: 'project', id: 'p-1' },
      intervalMs: 1_000,
      sinks: ['a'],
      settings: {},
    };
    const poller = new Poller({
      sources: new Map([['sim', source]]),
      leases: new LeaseManager(redis.client, keys),
      committer: new Committer(redis.client, keys),
      outbox: new OutboxMonitor(redis.client, keys),
      state: new ScopeStateStore(redis.client, keys),
      metrics,
      log,
      leaseTtlMs: 5_000,
      outboxMaxLength: 1_000,
    });
    await poller.poll(scope, new AbortController().signal);
    const second = await poller.poll(scope, new AbortController().signal);
    expect(second).toMatchObject({ outcome: 'completed', added: 1, duplicates: 0 });
    const counted = (await metrics.registry.getMetricsAsJSON()).find(
      (m) => m.name === 'auditlog_event_id_conflicts_total',
    );
    expect(counted?.values).toEqual([
      expect.objectContaining({ value: 1, labels: { provider: 'stackit', scope_kind: 'project' } }),
    ]);
    const warning = lines().find((l) => String(l.msg).includes('came again with other bytes'));
    expect(warning).toMatchObject({ level: 40, scope: SCOPE, provider: 'sim', eventId: 'e1' });
    expect(warning?.firstRawSha256).toBe(sha256Hex(A));
  });
});
