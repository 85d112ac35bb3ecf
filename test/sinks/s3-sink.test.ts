import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { withEnv } from '../../src/config/fields.ts';
import { s3SinkSchema } from '../../src/sinks/s3/config.ts';
import { S3Sink } from '../../src/sinks/s3/sink.ts';
import type { Verdict } from '../../src/sinks/sink.ts';
import { memoryLogger, silentLogger } from '../support/logger.ts';
import { S3_ACCESS_KEY, S3_SECRET_KEY, S3TestServer } from '../support/s3-server.ts';
import { outboxEvent } from './events.ts';

let server: S3TestServer;
let run = 0;
const signal = new AbortController().signal;
const kinds = (verdicts: readonly Verdict[]): string[] => verdicts.map((v) => v.kind);
const P1 = '11111111-1111-4111-8111-111111111111';
const P2 = '22222222-2222-4222-8222-222222222222';

beforeAll(async () => {
  server = new S3TestServer();
  await server.start();
});
afterAll(async () => {
  await server.remove();
});
let prefix = '';
beforeEach(() => {
  prefix = `run${++run}/`;
});

function sink(extra: Record<string, unknown> = {}, secret = S3_SECRET_KEY, log = silentLogger): S3Sink {
  const settings = withEnv({ S3_KEY: S3_ACCESS_KEY, S3_SECRET: secret }, () =>
    s3SinkSchema.parse({
      bucket: 'audit',
      prefix,
      endpoint: server.url,
      auth: { accessKeyId: '${S3_KEY}', secretAccessKey: '${S3_SECRET}' },
      ...extra,
    }),
  );
  return new S3Sink({ name: 'archive', type: 's3', settings }, { log, instanceId: 'test' });
}

describe('S3Sink against a local S3-protocol server', () => {
  it('writes one gzip NDJSON object per scope and hour, under keys derived from the content', async () => {
    const batch = [
      outboxEvent({ id: 'a2', time: '2025-03-04T05:30:00.000002Z', project: P1 }),
      outboxEvent({ id: 'a1', time: '2025-03-04T05:10:00.000001Z', project: P1 }),
      outboxEvent({ id: 'b1', time: '2025-03-04T06:00:00Z', project: P1 }),
      outboxEvent({ id: 'c1', time: '2025-03-04T05:00:00Z', project: P2 }),
    ];
    const s = sink();
    expect(kinds(await s.send(batch, signal))).toEqual(['delivered', 'delivered', 'delivered', 'delivered']);
    await s.close();
    const objects = (await server.objects(prefix)).sort((x, y) => (x.key < y.key ? -1 : 1));
    expect(objects.map((o) => o.key.replace(/-[0-9a-f]{16}\.ndjson\.gz$/, ''))).toEqual([
      `${prefix}stackit/project/${P1}/date=2025-03-04/hour=05/20250304T051000000Z-20250304T053000000Z`,
      `${prefix}stackit/project/${P1}/date=2025-03-04/hour=06/20250304T060000000Z-20250304T060000000Z`,
      `${prefix}stackit/project/${P2}/date=2025-03-04/hour=05/20250304T050000000Z-20250304T050000000Z`,
    ]);
    // Events in time order, the lines byte for byte as the outbox had them.
    expect(objects[0]?.lines).toEqual([batch[1]?.line, batch[0]?.line]);
    expect(objects[0]?.contentType).toBe('application/gzip');
    expect(objects[0]?.metadata).toMatchObject({
      events: '2',
      'first-event-id': 'a1',
      'last-event-id': 'a2',
    });
  });

  it('creates no second object when a batch is replayed, in any order (412 = already there)', async () => {
    const batch = [outboxEvent({ id: 'r1', project: P1 }), outboxEvent({ id: 'r2', project: P1 })];
    const s = sink();
    await s.send(batch, signal);
    const refusedBefore = server.conditionalPuts.refused;
    expect(kinds(await s.send([...batch].reverse(), signal))).toEqual(['duplicate', 'duplicate']);
    expect(server.conditionalPuts.refused).toBe(refusedBefore + 1);
    expect(await server.objects(prefix)).toHaveLength(1);
    await s.close();
  });

  it('also deduplicates with HEAD before PUT, for stores without conditional writes', async () => {
    const batch = [outboxEvent({ id: 'h1', project: P2 })];
    const s = sink({ conditionalWrites: false });
    expect(kinds(await s.send(batch, signal))).toEqual(['delivered']);
    expect(kinds(await s.send(batch, signal))).toEqual(['duplicate']);
    expect(await server.objects(prefix)).toHaveLength(1);
    await s.close();
  });

  it('holds the events with a clear error on bad credentials, never logging the secret', async () => {
    const { log, lines } = memoryLogger();
    const s = sink({}, 'wrong-secret-value', log);
    const [verdict] = await s.send([outboxEvent({ id: 'denied', project: P1 })], signal);
    await s.close();
    expect(verdict?.kind).toBe('retry');
    const reason = (verdict as { reason: string }).reason;
    // The conditional-write probe goes first, and nothing is written until it passes.
    expect(reason).toMatch(
      /^s3 sink "archive" \(bucket audit\): conditional writes not verified: first PUT of the canary failed: HTTP 403 SignatureDoesNotMatch: .*check the credentials/,
    );
    expect(JSON.stringify(lines()) + reason).not.toContain('wrong-secret-value');
    expect(await server.objects(prefix)).toHaveLength(0);
  });

  it('proves conditional writes at start with a canary written twice, and leaves no canary behind', async () => {
    const { log, lines } = memoryLogger();
    const s = sink({}, S3_SECRET_KEY, log);
    const refusedBefore = server.conditionalPuts.refused;
    await s.start();
    expect(server.conditionalPuts.refused).toBe(refusedBefore + 1);
    expect(JSON.stringify(lines())).toContain('answered 412');
    expect(await server.keys(prefix)).toEqual([]);
    await s.close();
  });

  it('refuses to start on a store that ignores If-None-Match, unless conditionalWrites is false', async () => {
    server.ignoreIfNoneMatch = true;
    try {
      const strict = sink();
      await expect(strict.start()).rejects.toThrow(
        /s3 sink "archive" \(bucket audit\): If-None-Match: \* IGNORED: the second PUT of the canary answered 200 and overwrote it; set conditionalWrites: false/,
      );
      await strict.close();
      const { log, lines } = memoryLogger();
      const lenient = sink({ conditionalWrites: false }, S3_SECRET_KEY, log);
      await lenient.start();
      expect(JSON.stringify(lines())).toContain('at-least-once');
      const batch = [outboxEvent({ id: 'i1', project: P1 })];
      expect(kinds(await lenient.send(batch, signal))).toEqual(['delivered']);
      // The HEAD before each write still keeps a replayed batch from being written twice.
      expect(kinds(await lenient.send(batch, signal))).toEqual(['duplicate']);
      expect(await server.objects(prefix)).toHaveLength(1);
      await lenient.close();
    } finally {
      server.ignoreIfNoneMatch = false;
    }
  });

  it('writes nothing while the store stops honouring If-None-Match after a start it could not probe', async () => {
    const s = sink();
    server.setDown(true);
    await s.start(); // inconclusive: started, nothing verified
    server.setDown(false);
    server.ignoreIfNoneMatch = true;
    try {
      const [verdict] = await s.send([outboxEvent({ id: 'n1', project: P1 })], signal);
      expect(verdict).toMatchObject({ kind: 'retry', reason: expect.stringContaining('IGNORED') });
      expect(await server.objects(prefix)).toHaveLength(0);
    } finally {
      server.ignoreIfNoneMatch = false;
    }
    expect(kinds(await s.send([outboxEvent({ id: 'n1', project: P1 })], signal))).toEqual(['delivered']);
    await s.close();
  });

  it('retries while the store is unavailable and writes once it is back', async () => {
    const s = sink();
    const batch = [outboxEvent({ id: 'u1', project: P1 })];
    server.setDown(true);
    expect((await s.send(batch, signal))[0]).toMatchObject({
      kind: 'retry',
      reason: expect.stringContaining('HTTP 503'),
    });
    server.setDown(false);
    expect(kinds(await s.send(batch, signal))).toEqual(['delivered']);
    expect(await server.objects(prefix)).toHaveLength(1);
    await s.close();
  });
});
