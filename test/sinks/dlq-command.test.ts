import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { listDlq, redriveDlq, showDlq } from '../../src/cli/commands/dlq.ts';
import { Metrics } from '../../src/observability/metrics.ts';
import { DeliveryWorker } from '../../src/pipeline/delivery-worker.ts';
import type { OutboxEvent } from '../../src/pipeline/envelope.ts';
import { RedisKeys } from '../../src/pipeline/keys.ts';
import { OutboxMonitor } from '../../src/pipeline/outbox.ts';
import type { Sink, Verdict } from '../../src/sinks/sink.ts';
import { silentLogger } from '../support/logger.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

let redis: TestRedis;
const keys = new RedisKeys('{auditlog}');

beforeAll(async () => {
  redis = await startTestRedis();
  process.env.REDIS_URL = redis.url;
});
afterAll(async () => {
  delete process.env.REDIS_URL;
  await redis.stop();
});
beforeEach(async () => {
  await redis.client.flushall();
});

class JudgingSink implements Sink {
  readonly name = 'loki';
  readonly seen: string[] = [];
  accept: (e: OutboxEvent) => boolean = () => true;
  async start(): Promise<void> {}
  async close(): Promise<void> {}
  async send(batch: readonly OutboxEvent[]): Promise<readonly Verdict[]> {
    return batch.map((e) => {
      this.seen.push(e.id);
      return this.accept(e)
        ? { kind: 'delivered' }
        : { kind: 'rejected', reason: `too_far_behind: event ${e.id}` };
    });
  }
}

async function deliverAll(sink: JudgingSink): Promise<void> {
  const worker = new DeliveryWorker({
    sink,
    redis: redis.connect(),
    keys,
    instanceId: 't',
    batchSize: 50,
    retry: { initialMs: 10, maxMs: 20 },
    consumerTimeoutMs: 5_000,
    blockMs: 50,
    metrics: new Metrics(),
    log: silentLogger,
  });
  await worker.start();
  const deadline = Date.now() + 5_000;
  while ((await redis.client.xlen(keys.outbox(sink.name))) > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  await worker.stop(1_000);
}

async function enqueue(ids: string[]): Promise<void> {
  await new OutboxMonitor(redis.client, keys).ensureGroup('loki');
  for (const id of ids) {
    await redis.client.xadd(
      keys.outbox('loki'),
      '*',
      'id',
      id,
      'scope',
      'stackit:project:p',
      't',
      '1000',
      'seen',
      '2000',
      'line',
      `{"id":"${id}"}`,
    );
  }
}

describe('auditlog-shipper dlq', () => {
  it('lists every sink that exists, also those that never dead-lettered anything (no config needed)', async () => {
    const outbox = new OutboxMonitor(redis.client, keys);
    await outbox.ensureGroup('archive');
    await outbox.ensureGroup('loki');
    let text = '';
    await listDlq({}, (s) => {
      text += s;
    });
    expect(text).not.toContain('no sinks');
    expect(text).toMatch(/archive\s+0/);
    expect(text).toMatch(/loki\s+0/);
  });

  it('lists, shows and redrives dead-lettered events, which the sink then takes', async () => {
    await enqueue(['e1', 'e2', 'e3', 'e4']);
    const sink = new JudgingSink();
    sink.accept = (e) => e.id === 'e1';
    await deliverAll(sink);
    expect(await redis.client.xlen(keys.deadLetter('loki'))).toBe(3);

    let text = '';
    await listDlq({ json: true }, (s) => {
      text += s;
    });
    const listed = JSON.parse(text) as Array<{
      sink: string;
      deadLettered: number;
      topReasons: Array<{ reason: string; count: number }>;
    }>;
    expect(listed).toEqual([
      expect.objectContaining({
        sink: 'loki',
        deadLettered: 3,
        topReasons: [{ reason: 'too_far_behind: event …', count: 3 }],
      }),
    ]);

    text = '';
    await showDlq('loki', { json: true, line: true }, (s) => {
      text += s;
    });
    const shown = JSON.parse(text) as Array<{ eventId: string; reason: string; line: string; scope: string }>;
    expect(shown.map((e) => e.eventId)).toEqual(['e2', 'e3', 'e4']);
    expect(shown[0]).toMatchObject({
      reason: 'too_far_behind: event e2',
      line: '{"id":"e2"}',
      scope: 'stackit:project:p',
    });

    // One by id, then the rest; the sink now accepts everything.
    expect((await redriveDlq('loki', { id: ['e3'] }, () => undefined)).moved).toBe(1);
    expect(await redis.client.xlen(keys.deadLetter('loki'))).toBe(2);
    expect((await redriveDlq('loki', { all: true }, () => undefined)).moved).toBe(2);
    expect(await redis.client.xlen(keys.deadLetter('loki'))).toBe(0);
    sink.accept = () => true;
    sink.seen.length = 0;
    await deliverAll(sink);
    expect(sink.seen.sort()).toEqual(['e2', 'e3', 'e4']);
    expect(await redis.client.xlen(keys.outbox('loki'))).toBe(0);
  });

  it('keeps entries that cannot be resent, and refuses to redrive without a selection', async () => {
    await redis.client.xadd(
      keys.deadLetter('loki'),
      '*',
      'entry',
      '1-1',
      'reason',
      'entry lacks id, scope or line',
      'rejectedAt',
      '1',
      'garbage',
      'x',
    );
    await expect(redriveDlq('loki', {}, () => undefined)).rejects.toThrow(/--all/);
    const result = await redriveDlq('loki', { all: true }, () => undefined);
    expect(result).toMatchObject({ moved: 0, skipped: [expect.any(String)] });
    expect(await redis.client.xlen(keys.deadLetter('loki'))).toBe(1);
  });

  it('moves nothing on a dry run', async () => {
    await enqueue(['d1']);
    const sink = new JudgingSink();
    sink.accept = () => false;
    await deliverAll(sink);
    let text = '';
    await redriveDlq('loki', { all: true, dryRun: true }, (s) => {
      text += s;
    });
    expect(text).toContain('would redrive');
    expect(await redis.client.xlen(keys.deadLetter('loki'))).toBe(1);
  });
});
