import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Metrics } from '../../src/observability/metrics.ts';
import { DeliveryWorker } from '../../src/pipeline/delivery-worker.ts';
import type { OutboxEvent } from '../../src/pipeline/envelope.ts';
import { DELIVERY_GROUP, RedisKeys } from '../../src/pipeline/keys.ts';
import { OutboxMonitor } from '../../src/pipeline/outbox.ts';
import type { BatchPolicy, Sink, Verdict } from '../../src/sinks/sink.ts';
import { silentLogger } from '../support/logger.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

let redis: TestRedis;
const keys = new RedisKeys('{test}');
const workers: DeliveryWorker[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis.stop();
});
beforeEach(async () => {
  await redis.client.flushall();
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop(2_000)));
});

/** A sink whose verdicts the test decides per call; it records what it was sent. */
class ScriptedSink implements Sink {
  readonly name = 'scripted';
  readonly received: OutboxEvent[][] = [];
  decide: (event: OutboxEvent, call: number) => Verdict | 'throw' = () => ({ kind: 'delivered' });
  async start(): Promise<void> {}
  async send(batch: readonly OutboxEvent[]): Promise<readonly Verdict[]> {
    this.received.push([...batch]);
    const call = this.received.length;
    const verdicts = batch.map((event) => this.decide(event, call));
    if (verdicts.includes('throw')) throw new Error('connection refused');
    return verdicts as Verdict[];
  }
  async close(): Promise<void> {}
  delivered(): string[] {
    return this.received.flat().map((e) => e.id);
  }
}

async function enqueue(sink: string, ids: string[], scope = 's', pad = 0): Promise<void> {
  await new OutboxMonitor(redis.client, keys).ensureGroup(sink);
  for (const id of ids) {
    await redis.client.xadd(
      keys.outbox(sink),
      '*',
      'id',
      id,
      'scope',
      scope,
      't',
      '1000',
      'seen',
      '2000',
      'line',
      `{"id":"${id}"${pad > 0 ? `,"pad":"${'x'.repeat(pad)}"` : ''}}`,
    );
  }
}

async function startWorker(
  sink: Sink,
  overrides: { consumerTimeoutMs?: number; policy?: Partial<BatchPolicy>; metrics?: Metrics } = {},
): Promise<DeliveryWorker> {
  const worker = new DeliveryWorker({
    sink,
    redis: redis.connect(),
    keys,
    instanceId: 'test',
    batchSize: 10,
    ...(overrides.policy ? { policy: overrides.policy } : {}),
    retry: { initialMs: 10, maxMs: 50 },
    consumerTimeoutMs: overrides.consumerTimeoutMs ?? 10_000,
    blockMs: 50,
    metrics: overrides.metrics ?? new Metrics(),
    log: silentLogger,
  });
  await worker.start();
  workers.push(worker);
  return worker;
}

/** Waits for a condition; the timeout only detects a hang, generous for a loaded machine. */
async function until(check: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('DeliveryWorker', () => {
  it('appends a batch it was retrying to the outbox again when Redis lost its state, instead of dropping it', async () => {
    await redis.client.set(keys.generation(), 'before');
    await enqueue('scripted', ['a', 'b']);
    const sink = new ScriptedSink();
    const delivered: string[] = [];
    let down = true;
    sink.decide = (event) => {
      if (down) return 'throw';
      delivered.push(event.id);
      return { kind: 'delivered' };
    };
    // Stable batches: the batch's seal goes with Redis's state, so the retry finds it no longer its own.
    await startWorker(sink, { policy: { stableBatches: true, maxEvents: 2 } });
    await until(() => sink.received.length >= 2);
    await redis.client.flushall();
    await redis.client.set(keys.generation(), 'after'); // what the daemon's generation watch writes
    // Both are back in the outbox, durable again, while the sink is still down.
    await until(async () => (await redis.client.xlen(keys.outbox('scripted'))) === 2, 15_000);
    down = false;
    await until(async () => (await redis.client.xlen(keys.outbox('scripted'))) === 0, 15_000);
    expect(delivered.sort()).toEqual(['a', 'b']);
  });

  it('re-creates its outbox stream and consumer group when Redis comes back empty, without a restart', async () => {
    await enqueue('scripted', ['before']);
    const sink = new ScriptedSink();
    await startWorker(sink);
    await until(() => sink.delivered().includes('before'));
    // An empty replica, a restart without persistence, FLUSHALL: the group is gone, and the polls'
    // commits create the stream again with XADD, without a group.
    await redis.client.flushall();
    for (const id of ['after-1', 'after-2']) {
      await redis.client.xadd(
        keys.outbox('scripted'),
        '*',
        'id',
        id,
        'scope',
        's',
        't',
        '1',
        'seen',
        '2',
        'line',
        `{"id":"${id}"}`,
      );
    }
    await until(() => sink.delivered().includes('after-2'), 15_000);
    expect(sink.delivered()).toEqual(['before', 'after-1', 'after-2']);
    await until(async () => (await redis.client.xlen(keys.outbox('scripted'))) === 0);
  });

  it('leaves backfilled history out of the freshness histogram', async () => {
    await enqueue('scripted', ['live'], 'stackit:project:p');
    await enqueue('scripted', ['old'], 'stackit:project:p#backfill');
    const metrics = new Metrics();
    const sink = new ScriptedSink();
    await startWorker(sink, { metrics });
    await until(async () => (await redis.client.xlen(keys.outbox('scripted'))) === 0);
    expect(sink.delivered().sort()).toEqual(['live', 'old']);
    const freshness = (await metrics.registry.getMetricsAsJSON()).find(
      (m) => m.name === 'auditlog_freshness_seconds',
    );
    const count = freshness?.values.find(
      (v) => (v as { metricName?: string }).metricName === 'auditlog_freshness_seconds_count',
    );
    expect(count?.value).toBe(1);
  });

  it('delivers every outbox entry and removes it once acknowledged', async () => {
    const ids = Array.from({ length: 25 }, (_, i) => `e${i}`);
    await enqueue('scripted', ids);
    const sink = new ScriptedSink();
    await startWorker(sink);
    await until(async () => (await redis.client.xlen(keys.outbox('scripted'))) === 0);
    expect(sink.delivered().sort()).toEqual([...ids].sort());
    expect(sink.received.every((batch) => batch.length <= 10)).toBe(true);
    const pending = (await redis.client.xpending(keys.outbox('scripted'), DELIVERY_GROUP)) as [number];
    expect(pending[0]).toBe(0);
  });

  it('keeps retrying retryable events, and only those, until the sink takes them', async () => {
    await enqueue('scripted', ['ok', 'flaky']);
    const sink = new ScriptedSink();
    sink.decide = (event, call) =>
      event.id === 'flaky' && call < 4 ? { kind: 'retry', reason: 'HTTP 503' } : { kind: 'delivered' };
    await startWorker(sink);
    await until(async () => (await redis.client.xlen(keys.outbox('scripted'))) === 0);
    expect(sink.received.map((batch) => batch.map((e) => e.id))).toEqual([
      ['ok', 'flaky'],
      ['flaky'],
      ['flaky'],
      ['flaky'],
    ]);
  });

  it('retries the whole batch when the sink throws', async () => {
    await enqueue('scripted', ['a', 'b']);
    const sink = new ScriptedSink();
    sink.decide = (_event, call) => (call < 3 ? 'throw' : { kind: 'delivered' });
    await startWorker(sink);
    await until(async () => (await redis.client.xlen(keys.outbox('scripted'))) === 0);
    expect(sink.received).toHaveLength(3);
    expect(sink.received[2]?.map((e) => e.id)).toEqual(['a', 'b']);
  });

  it('dead-letters rejected events with the reason and the original entry, never dropping them', async () => {
    await enqueue('scripted', ['good', 'bad']);
    const sink = new ScriptedSink();
    sink.decide = (event) =>
      event.id === 'bad' ? { kind: 'rejected', reason: 'mapper_parsing_exception' } : { kind: 'delivered' };
    await startWorker(sink);
    await until(async () => (await redis.client.xlen(keys.outbox('scripted'))) === 0);
    const dead = await redis.client.xrange(keys.deadLetter('scripted'), '-', '+');
    expect(dead).toHaveLength(1);
    const fields = Object.fromEntries(chunk(dead[0]![1]));
    expect(fields).toMatchObject({
      reason: 'mapper_parsing_exception',
      id: 'bad',
      line: '{"id":"bad"}',
      scope: 's',
    });
  });

  it('dead-letters an outbox entry it cannot read instead of crash-looping on it', async () => {
    await enqueue('scripted', ['fine']);
    await redis.client.xadd(keys.outbox('scripted'), '*', 'garbage', 'yes');
    const sink = new ScriptedSink();
    await startWorker(sink);
    await until(async () => (await redis.client.xlen(keys.outbox('scripted'))) === 0);
    expect(sink.delivered()).toEqual(['fine']);
    const dead = await redis.client.xrange(keys.deadLetter('scripted'), '-', '+');
    expect(Object.fromEntries(chunk(dead[0]![1])).reason).toContain('lacks id');
  });

  it('reclaims what a dead consumer left pending once its heartbeat has expired', async () => {
    await enqueue('scripted', ['x', 'y']);
    // A consumer that read the entries and died without acknowledging (no heartbeat key).
    await redis.client.xreadgroup(
      'GROUP',
      DELIVERY_GROUP,
      'dead-consumer',
      'COUNT',
      10,
      'STREAMS',
      keys.outbox('scripted'),
      '>',
    );
    const sink = new ScriptedSink();
    await startWorker(sink, { consumerTimeoutMs: 300 });
    await until(async () => (await redis.client.xlen(keys.outbox('scripted'))) === 0);
    expect(sink.delivered().sort()).toEqual(['x', 'y']);
  });

  it('leaves the entries of a live consumer alone', async () => {
    await enqueue('scripted', ['held']);
    await redis.client.xreadgroup(
      'GROUP',
      DELIVERY_GROUP,
      'alive',
      'COUNT',
      10,
      'STREAMS',
      keys.outbox('scripted'),
      '>',
    );
    await redis.client.set(keys.consumerHeartbeat('scripted', 'alive'), 'alive', 'PX', 10_000);
    const sink = new ScriptedSink();
    await startWorker(sink, { consumerTimeoutMs: 200 });
    await new Promise((r) => setTimeout(r, 600));
    expect(sink.delivered()).toEqual([]);
    expect(await redis.client.xlen(keys.outbox('scripted'))).toBe(1);
  });
});

describe('DeliveryWorker batching and concurrency', () => {
  it('cuts batches by bytes as well as by count', async () => {
    // Each line is ~110 bytes: 3 fit under 400 bytes, the 4th does not.
    await enqueue('scripted', ['a', 'b', 'c', 'd', 'e', 'f', 'g'], 's', 100);
    const sink = new ScriptedSink();
    await startWorker(sink, { policy: { maxEvents: 100, maxBytes: 400 } });
    await until(async () => (await redis.client.xlen(keys.outbox('scripted'))) === 0);
    expect(sink.received.map((b) => b.map((e) => e.id))).toEqual([['a', 'b', 'c'], ['d', 'e', 'f'], ['g']]);
  });

  it('lets a batch that is not full linger until its oldest event is old enough, then sends it', async () => {
    const sink = new ScriptedSink();
    const sentAt: number[] = [];
    sink.decide = (_e, call) => {
      sentAt[call] = Date.now();
      return { kind: 'delivered' };
    };
    await new OutboxMonitor(redis.client, keys).ensureGroup('scripted');
    await startWorker(sink, { policy: { maxEvents: 5, lingerMs: 600 } });
    const t0 = Date.now();
    await enqueue('scripted', ['lonely']);
    await until(() => sink.received.length === 1);
    // A lower bound only: a loaded machine can make the wait longer, never shorter.
    expect((sentAt[1] as number) - t0).toBeGreaterThanOrEqual(550);
  });

  it('sends a full batch at once, without lingering', async () => {
    const sink = new ScriptedSink();
    await new OutboxMonitor(redis.client, keys).ensureGroup('scripted');
    // A linger longer than the test may run: a full batch that arrives at all did not wait for it.
    await startWorker(sink, { policy: { maxEvents: 5, lingerMs: 3_600_000 } });
    await enqueue('scripted', ['f1', 'f2', 'f3', 'f4', 'f5']);
    await until(() => sink.received.length === 1);
    expect(sink.received[0]?.map((e) => e.id)).toEqual(['f1', 'f2', 'f3', 'f4', 'f5']);
  });

  it('keeps several batches in flight, but never two of one partition, and each partition in order', async () => {
    const ids = Array.from({ length: 60 }, (_, i) => `e${String(i).padStart(2, '0')}`);
    await enqueue(
      'scripted',
      ids.filter((_, i) => i % 3 === 0),
      'p0',
    );
    await enqueue(
      'scripted',
      ids.filter((_, i) => i % 3 === 1),
      'p1',
    );
    await enqueue(
      'scripted',
      ids.filter((_, i) => i % 3 === 2),
      'p2',
    );
    let inFlight = 0;
    let maxInFlight = 0;
    const inFlightPerKey = new Map<string, number>();
    let overlapOfOneKey = false;
    const order = new Map<string, string[]>();
    const sink: Sink = {
      name: 'scripted',
      async start() {},
      async close() {},
      partitionKey: (e) => e.scopeKey,
      async send(batch) {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        const keysHere = new Set(batch.map((e) => e.scopeKey));
        for (const k of keysHere) {
          const n = (inFlightPerKey.get(k) ?? 0) + 1;
          inFlightPerKey.set(k, n);
          if (n > 1) overlapOfOneKey = true;
        }
        for (const e of batch) order.set(e.scopeKey, [...(order.get(e.scopeKey) ?? []), e.id]);
        await new Promise((r) => setTimeout(r, 30));
        for (const k of keysHere) inFlightPerKey.set(k, (inFlightPerKey.get(k) ?? 1) - 1);
        inFlight--;
        return batch.map(() => ({ kind: 'delivered' }) as const);
      },
    };
    await startWorker(sink, { policy: { maxEvents: 4, concurrency: 3 } });
    await until(async () => (await redis.client.xlen(keys.outbox('scripted'))) === 0);
    expect(maxInFlight).toBeGreaterThan(1);
    expect(overlapOfOneKey).toBe(false);
    for (const [, got] of order) expect(got).toEqual([...got].sort());
    expect([...order.values()].flat().sort()).toEqual(ids);
  });

  it('re-sends a sealed batch exactly as it was after its consumer died', async () => {
    await enqueue('scripted', ['a', 'b', 'c']);
    // The first consumer seals [a, b] (2 per batch) and dies while sending it.
    const hanging: Sink = {
      name: 'scripted',
      async start() {},
      async close() {},
      send: (_batch, signal) =>
        new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
    };
    const first = await startWorker(hanging, {
      consumerTimeoutMs: 300,
      policy: { maxEvents: 2, stableBatches: true },
    });
    await until(async () => (await redis.client.hlen('{test}:batches:scripted')) === 1);
    await first.stop(200);
    await enqueue('scripted', ['d']);
    // The next consumer takes 3 per batch; without the seal it would send [a, b, c].
    const sink = new ScriptedSink();
    await startWorker(sink, { consumerTimeoutMs: 300, policy: { maxEvents: 3, stableBatches: true } });
    await until(async () => (await redis.client.xlen(keys.outbox('scripted'))) === 0);
    const withA = sink.received.find((b) => b.some((e) => e.id === 'a'));
    expect(withA?.map((e) => e.id)).toEqual(['a', 'b']);
    expect(sink.delivered().sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(await redis.client.hlen('{test}:batches:scripted')).toBe(0);
  });
});

function chunk(flat: string[]): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i < flat.length; i += 2) pairs.push([flat[i]!, flat[i + 1]!]);
  return pairs;
}

describe('DeliveryWorker presumed dead while still alive', () => {
  it('never sends a second, differently cut batch of events another replica took over', async () => {
    await enqueue('scripted', ['a', 'b', 'c', 'd', 'e']);
    // The stalled replica: it seals [a, b] (2 per batch), hangs in the send, and keeps c, d, e queued.
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const stalled = new ScriptedSink();
    const stalledSend = stalled.send.bind(stalled);
    stalled.send = async (batch) => {
      if (stalled.received.length === 0) await gate;
      return stalledSend(batch);
    };
    const first = await startWorker(stalled, {
      consumerTimeoutMs: 10_000,
      policy: { maxEvents: 2, stableBatches: true },
    });
    await until(async () => (await redis.client.hlen('{test}:batches:scripted')) === 1);
    // Its heartbeat expires (a Redis pause, a frozen process) while it is still alive.
    await redis.client.del(keys.consumerHeartbeat('scripted', first.consumer));
    const taker = new ScriptedSink();
    await startWorker(taker, { consumerTimeoutMs: 300, policy: { maxEvents: 3, stableBatches: true } });
    await until(() => taker.delivered().length === 5);
    release();
    await until(async () => (await redis.client.xlen(keys.outbox('scripted'))) === 0);
    await new Promise((r) => setTimeout(r, 300));

    // The taker re-sent the sealed batch as it was and cut its own from the rest, each event once; the
    // stalled one finished its sealed batch (the sink answers "already there") and sent nothing else.
    const cuts = taker.received.map((b) => b.map((e) => e.id));
    expect(cuts).toContainEqual(['a', 'b']);
    expect(cuts.flat().sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(stalled.received.map((b) => b.map((e) => e.id))).toEqual([['a', 'b']]);
    expect(await redis.client.hlen('{test}:batches:scripted')).toBe(0);
  });
});

describe('DeliveryWorker orphaned entries', () => {
  it('queues again, and delivers, entries that were read but are pending for no consumer', async () => {
    await enqueue('scripted', ['o1', 'o2', 'fresh']);
    // A consumer read two entries and was then deleted from the group with them still pending (by
    // hand, or by a check-then-delete race): nothing would ever read them again.
    await redis.client.xreadgroup(
      'GROUP',
      DELIVERY_GROUP,
      'vanished',
      'COUNT',
      2,
      'STREAMS',
      keys.outbox('scripted'),
      '>',
    );
    await redis.client.xgroup('DELCONSUMER', keys.outbox('scripted'), DELIVERY_GROUP, 'vanished');
    const sink = new ScriptedSink();
    await startWorker(sink, { consumerTimeoutMs: 300 });
    await until(async () => (await redis.client.xlen(keys.outbox('scripted'))) === 0);
    expect(sink.delivered().sort()).toEqual(['fresh', 'o1', 'o2']);
  });

  it('forgets a consumer that is gone and had nothing pending, and keeps one that is alive', async () => {
    await enqueue('scripted', ['p']);
    for (const name of ['gone', 'alive']) {
      await redis.client.xgroup('CREATECONSUMER', keys.outbox('scripted'), DELIVERY_GROUP, name);
    }
    await redis.client.set(keys.consumerHeartbeat('scripted', 'alive'), 'x', 'PX', 60_000);
    const sink = new ScriptedSink();
    const worker = await startWorker(sink, { consumerTimeoutMs: 200 });
    await until(() => sink.delivered().length === 1);
    await new Promise((r) => setTimeout(r, 300));
    const consumers = (await redis.client.xinfo(
      'CONSUMERS',
      keys.outbox('scripted'),
      DELIVERY_GROUP,
    )) as unknown[][];
    expect(consumers.map((c) => String(c[1])).sort()).toEqual(['alive', worker.consumer].sort());
  });
});
