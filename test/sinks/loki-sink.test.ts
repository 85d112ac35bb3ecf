import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { withEnv } from '../../src/config/fields.ts';
import { lokiSinkSchema } from '../../src/sinks/loki/config.ts';
import { LokiSink } from '../../src/sinks/loki/sink.ts';
import type { Verdict } from '../../src/sinks/sink.ts';
import { memoryLogger, silentLogger } from '../support/logger.ts';
import { type LokiServerOptions, LokiTestServer } from '../support/loki-server.ts';
import { isoMicros, outboxEvent } from './events.ts';

const PASSWORD = 'loki-pass-7f3a9c';
const AUTH = `Basic ${Buffer.from(`shipper:${PASSWORD}`).toString('base64')}`;
let server: LokiTestServer;
const sinks: LokiSink[] = [];

async function startServer(options: LokiServerOptions = {}): Promise<void> {
  server = new LokiTestServer({ authorization: AUTH, ...options });
  await server.start();
}

function sink(extra: Record<string, unknown> = {}, log = silentLogger): LokiSink {
  const settings = withEnv({ LOKI_PASSWORD: PASSWORD }, () =>
    lokiSinkSchema.parse({
      url: server.url,
      tenant: 'acme',
      auth: { username: 'shipper', password: '${LOKI_PASSWORD}' },
      ...extra,
    }),
  );
  const s = new LokiSink({ name: 'loki', type: 'loki', settings }, { log, instanceId: 'test' });
  sinks.push(s);
  return s;
}

const signal = new AbortController().signal;
const kinds = (verdicts: readonly Verdict[]): string[] => verdicts.map((v) => v.kind);

beforeEach(async () => {
  await startServer();
});
afterEach(async () => {
  await Promise.all(sinks.splice(0).map((s) => s.close()));
  await server.stop();
});

describe('LokiSink', () => {
  it('pushes snappy protobuf: one entry per event, labelled per scope, at the event time in ns, id as metadata', async () => {
    const now = Date.now();
    const a = outboxEvent({ id: 'a', time: isoMicros(now - 2_000, 456) });
    const b = outboxEvent({
      id: 'b',
      time: isoMicros(now - 1_000, 789),
      project: '22222222-2222-4222-8222-222222222222',
    });
    expect(kinds(await sink().send([a, b], signal))).toEqual(['delivered', 'delivered']);
    expect(server.requests[0]).toMatchObject({ status: 204, contentType: 'application/x-protobuf' });
    const stored = server.entries();
    expect(stored).toHaveLength(2);
    const first = stored.find((e) => e.line === a.line);
    expect(first).toMatchObject({
      tenant: 'acme',
      labels:
        '{provider="stackit", scope_id="11111111-1111-4111-8111-111111111111", scope_kind="project", service_name="auditlog-shipper"}',
      metadata: {
        event_id: 'a',
        action: 'iam.create',
        actor_id: 'u-1',
        actor_email: 'alice@example.com',
        source_ip: '192.0.2.7',
      },
    });
    // The provider's microseconds survive: ms * 1e6 + 456 µs * 1e3.
    expect(first?.tsNanos).toBe(BigInt(now - 2_000) * 1_000_000n + 456_000n);
    expect(new Set(stored.map((e) => e.labels)).size).toBe(2);
  });

  it('speaks the JSON format with gzip as well', async () => {
    const e = outboxEvent({ id: 'j1' });
    expect(kinds(await sink({ format: 'json' }).send([e], signal))).toEqual(['delivered']);
    expect(server.requests[0]).toMatchObject({
      status: 204,
      contentType: 'application/json',
      encoding: 'gzip',
    });
    expect(server.entries()[0]?.line).toBe(e.line);
    expect(server.entries()[0]?.metadata.event_id).toBe('j1');
  });

  it('stores nothing twice when a batch is sent again after a lost answer', async () => {
    const batch = [outboxEvent({ id: 'r1' }), outboxEvent({ id: 'r2' })];
    const s = sink();
    await s.send(batch, signal);
    expect(kinds(await s.send(batch, signal))).toEqual(['delivered', 'delivered']);
    expect(server.entries()).toHaveLength(2);
  });

  it('sends a stream in time order within a push', async () => {
    const now = Date.now();
    const batch = [3, 1, 2].map((k) =>
      outboxEvent({ id: `o${k}`, time: isoMicros(now - 10_000 + k * 1_000) }),
    );
    await sink().send(batch, signal);
    expect(server.entries().map((e) => e.metadata.event_id)).toEqual(['o1', 'o2', 'o3']);
  });

  it("dead-letters the entries Loki refuses as too old with Loki's reason and keeps the rest (partial 400)", async () => {
    const old = outboxEvent({ id: 'old', time: isoMicros(Date.now() - 8 * 86_400_000) });
    const fresh = outboxEvent({ id: 'fresh' });
    // The local pre-check is off, so Loki itself must answer.
    const verdicts = await sink({ limits: { rejectOlderThan: '0s' } }).send([old, fresh], signal);
    expect(kinds(verdicts)).toEqual(['rejected', 'delivered']);
    expect((verdicts[0] as { reason: string }).reason).toMatch(
      /greater_than_max_sample_age: entry for stream .* has timestamp too old/,
    );
    expect(server.entries().map((e) => e.metadata.event_id)).toEqual(['fresh']);
    expect(server.requests.map((r) => r.status)).toEqual([400, 204]);
  });

  it('rejects events Loki would refuse before sending them, by its configured limits', async () => {
    const old = outboxEvent({ id: 'old', time: isoMicros(Date.now() - 8 * 86_400_000) });
    const long = outboxEvent({ id: 'long', rawExtra: `,"blob":"${'x'.repeat(2_000)}"` });
    const future = outboxEvent({ id: 'future', time: isoMicros(Date.now() + 3_600_000) });
    const verdicts = await sink({ limits: { maxLineSize: '1KiB' } }).send([old, long, future], signal);
    expect(verdicts.map((v) => (v.kind === 'rejected' ? v.reason.split(':')[0] : v.kind))).toEqual([
      'greater_than_max_sample_age',
      'line_too_long',
      'too_far_in_future',
    ]);
    expect(server.requests).toHaveLength(0);
  });

  it('dead-letters entries too far behind their stream, also beyond the 10 Loki lists', async () => {
    const now = Date.now();
    const s = sink();
    await s.send([outboxEvent({ id: 'newest', time: isoMicros(now - 1_000) })], signal);
    const behind = Array.from({ length: 12 }, (_, i) =>
      outboxEvent({ id: `b${i}`, time: isoMicros(now - 2 * 3_600_000 + i) }),
    );
    const ok = outboxEvent({ id: 'ok', time: isoMicros(now - 500) });
    const verdicts = await s.send([...behind, ok], signal);
    expect(kinds(verdicts)).toEqual([...behind.map(() => 'rejected'), 'delivered']);
    expect((verdicts[0] as { reason: string }).reason).toMatch(/^loki: too_far_behind: entry too far behind/);
    expect(
      server
        .entries()
        .map((e) => e.metadata.event_id)
        .sort(),
    ).toEqual(['newest', 'ok']);
  });

  it('finds a refused entry Loki does not name by halving the batch', async () => {
    // A Loki whose 400 answers name nothing (e.g. behind a proxy that rewrites error bodies).
    await server.stop();
    server = new LokiTestServer({ authorization: AUTH, maxLineSize: 1_500, opaqueErrors: true });
    await server.start();
    const events = Array.from({ length: 8 }, (_, i) =>
      outboxEvent({ id: `h${i}`, ...(i === 5 ? { rawExtra: `,"blob":"${'y'.repeat(2_000)}"` } : {}) }),
    );
    const verdicts = await sink({ limits: { maxLineSize: 0 } }).send(events, signal);
    expect(kinds(verdicts)).toEqual([
      'delivered',
      'delivered',
      'delivered',
      'delivered',
      'delivered',
      'rejected',
      'delivered',
      'delivered',
    ]);
    expect((verdicts[5] as { reason: string }).reason).toBe('loki: HTTP 400 for event h5: Bad Request');
    expect(server.entries()).toHaveLength(7);
    // 8 → 4+4 → 2+2 → 1+1: a handful of requests, not one per event.
    expect(server.requests.filter((r) => r.status === 400).length).toBeLessThanOrEqual(4);
  });

  it('splits a batch Loki finds too large (413), and dead-letters an entry too large on its own', async () => {
    await server.stop();
    server = new LokiTestServer({ authorization: AUTH, maxRecvBytes: 3_000 });
    await server.start();
    const events = Array.from({ length: 6 }, (_, i) => outboxEvent({ id: `s${i}` }));
    const huge = outboxEvent({ id: 'huge', rawExtra: `,"blob":"${'z'.repeat(20_000)}"` });
    const verdicts = await sink({ format: 'json', compression: 'none' }).send([...events, huge], signal);
    expect(kinds(verdicts)).toEqual([...events.map(() => 'delivered'), 'rejected']);
    expect(server.requests.some((r) => r.status === 413)).toBe(true);
    expect(server.entries()).toHaveLength(6);
  });

  it('retries on 429 honouring Retry-After, on 5xx, and treats 260 (ingestion blocked) as a failure', async () => {
    const s = sink();
    const e = outboxEvent({ id: 'x' });
    server.queue({ status: 429, headers: { 'retry-after': '7' }, body: 'Ingestion rate limit exceeded' });
    expect(await s.send([e], signal)).toEqual([
      { kind: 'retry', reason: expect.stringContaining('HTTP 429'), retryAfterMs: 7_000 },
    ]);
    server.setDown(true);
    expect(kinds(await s.send([e], signal))).toEqual(['retry']);
    server.setDown(false);
    server.queue({ status: 260 });
    const blocked = await s.send([e], signal);
    expect(blocked[0]).toMatchObject({ kind: 'retry', reason: expect.stringContaining('blocked') });
    expect(server.entries()).toHaveLength(0);
    expect(kinds(await s.send([e], signal))).toEqual(['delivered']);
  });

  it('holds events (never dead-letters them) on setup problems: no tenant, bad credentials, metadata disabled', async () => {
    const e = outboxEvent({ id: 'held' });
    const noTenant = sink({ tenant: undefined });
    expect((await noTenant.send([e], signal))[0]).toMatchObject({
      kind: 'retry',
      reason: expect.stringContaining('HTTP 401'),
    });
    await server.stop();
    server = new LokiTestServer({ authorization: AUTH, allowStructuredMetadata: false });
    await server.start();
    const { log, lines } = memoryLogger();
    const verdicts = await sink({}, log).send([e, outboxEvent({ id: 'held2' })], signal);
    expect(kinds(verdicts)).toEqual(['retry', 'retry']);
    expect((verdicts[0] as { reason: string }).reason).toContain('setup problem');
    // The password never shows, in reasons or logs.
    expect(JSON.stringify(verdicts) + JSON.stringify(lines())).not.toContain(PASSWORD);
    expect(JSON.stringify(lines())).not.toContain(Buffer.from(`shipper:${PASSWORD}`).toString('base64'));
  });

  it('reports a network failure as retry naming the sink and the first event', async () => {
    const e = outboxEvent({ id: 'net' });
    const s = sink();
    await server.stop();
    const [verdict] = await s.send([e], signal);
    expect(verdict).toMatchObject({
      kind: 'retry',
      reason: expect.stringMatching(/sink "loki".*first event net/),
    });
    await startServer();
  });

  it('refuses label templates that would explode cardinality, at config time', () => {
    const result = lokiSinkSchema.safeParse({ url: 'http://x', labels: { id: '{id}' } });
    expect(result.success).toBe(false);
    expect(JSON.stringify(result.error?.issues)).toContain('structuredMetadata');
  });
});
