import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Metrics } from '../../src/observability/metrics.ts';
import { DeliveryWorker } from '../../src/pipeline/delivery-worker.ts';
import type { OutboxEvent } from '../../src/pipeline/envelope.ts';
import { DELIVERY_GROUP, RedisKeys } from '../../src/pipeline/keys.ts';
import { OutboxMonitor } from '../../src/pipeline/outbox.ts';
import type { Sink, Verdict } from '../../src/sinks/sink.ts';
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

async function enqueue(sink: string, ids: string[]): Promise<void> {
  await new OutboxMonitor(redis.client, keys).ensureGroup(sink);
  for (const id of ids) {
    await redis.client.xadd(
      keys.outbox(sink),
      '*',
      'id',
      id,
      'scope',
      's',
      't',
      '1000',
      'seen',
      '2000',
      'line',
      `{"id":"${id}"}`,
    );
  }
}

async function startWorker(
  sink: Sink,
  overrides: { consumerTimeoutMs?: number } = {},
): Promise<DeliveryWorker> {
  const worker = new DeliveryWorker({
    sink,
    redis: redis.connect(),
    keys,
    instanceId: 'test',
    batchSize: 10,
    retry: { initialMs: 10, maxMs: 50 },
    consumerTimeoutMs: overrides.consumerTimeoutMs ?? 10_000,
    blockMs: 50,
    metrics: new Metrics(),
    log: silentLogger,
  });
  await worker.start();
  workers.push(worker);
  return worker;
}

async function until(check: () => Promise<boolean> | boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('DeliveryWorker', () => {
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

function chunk(flat: string[]): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i < flat.length; i += 2) pairs.push([flat[i]!, flat[i + 1]!]);
  return pairs;
}
