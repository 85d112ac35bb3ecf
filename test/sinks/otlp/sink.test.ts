import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { Secret } from '../../../src/config/secret.ts';
import { decodeJsonRequest, encodeJsonRequest } from '../../../src/otlp/json.ts';
import { attribute, type LocatedRecord } from '../../../src/otlp/model.ts';
import { decodeProtobufRequest, encodeProtobufRequest } from '../../../src/otlp/protobuf.ts';
import type { ExportAnswer } from '../../../src/otlp/receiver/handler.ts';
import { OtlpHttpReceiver } from '../../../src/otlp/receiver/http.ts';
import type { DecodedLogs } from '../../../src/otlp/validate.ts';
import { type AuditEvent, type OutboxEvent, serializeEnvelope } from '../../../src/pipeline/envelope.ts';
import { otlpSinkSchema } from '../../../src/sinks/otlp/config.ts';
import { OtlpSink } from '../../../src/sinks/otlp/sink.ts';
import { silentLogger } from '../../support/logger.ts';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

function outboxEvent(
  n: number,
  raw = `{"id":"ev-${n}","note":"caf\u00e9 \\u00e9 ${n}","n":${n}.50}`,
): OutboxEvent {
  const event: AuditEvent = {
    id: `ev-${n}`,
    provider: 'stackit',
    scope: { kind: 'project', id: 'p-1' },
    time: `2026-12-02T09:00:0${n % 10}.123456789Z`,
    timeMs: Date.UTC(2026, 11, 2, 9, 0, n % 10) + 123,
    action: 'iam.member.add',
    actor: { id: 'u-1', email: 'alice@example.com' },
    sourceIp: '192.0.2.1',
    resource: { id: 'r-1', type: 'iam' },
    ...(n === 2 ? { anomalies: ['time taken from receivedTimeStamp'] } : {}),
    raw,
  };
  return {
    entryId: `1-${n}`,
    id: event.id,
    scopeKey: 'stackit:project:p-1',
    timeMs: event.timeMs,
    seenAtMs: 1_764_666_000_000,
    line: serializeEnvelope(event, 1_764_666_000_000),
  };
}

/** A generic OTLP receiver that answers by script and keeps what it got, bytes and decoded. */
async function receiver(answer: (request: DecodedLogs) => ExportAnswer, auth?: string) {
  const got: Array<{ decoded: DecodedLogs }> = [];
  const server = new OtlpHttpReceiver({
    host: '127.0.0.1',
    port: 0,
    auth: auth ? { kind: 'bearer', token: new Secret(auth, 'test') } : { kind: 'none' },
    maxBodyBytes: 16 * 1024 * 1024,
    handler: async (decoded) => {
      got.push({ decoded });
      return answer(decoded);
    },
    log: silentLogger,
  });
  const port = await server.listen();
  closers.push(() => server.close());
  return { url: `http://127.0.0.1:${port}/v1/logs`, got };
}

function sink(url: string, extra: Record<string, unknown> = {}): OtlpSink {
  const settings = otlpSinkSchema.parse({ url, ...extra });
  const s = new OtlpSink({ name: 'otel', type: 'otlp', settings }, { log: silentLogger, instanceId: 'i-1' });
  closers.push(() => s.close());
  return s;
}

const ids = (r: LocatedRecord): string | undefined => {
  const v = attribute(r.record.attributes, 'log.record.uid');
  return v?.kind === 'string' ? v.value : undefined;
};

const accepted: ExportAnswer = { kind: 'accepted', rejected: 0, message: '' };

describe('otlp sink', () => {
  for (const encoding of ['protobuf', 'json'] as const) {
    it(`exports ${encoding} that the receiver reads back byte for byte: raw verbatim as body, id in log.record.uid`, async () => {
      const bodies: Buffer[] = [];
      // A plain server in front keeps the exact bytes; the shipper's own receiver decodes them.
      const upstream = await receiver(() => accepted);
      const tap = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', async () => {
          bodies.push(gunzipSync(Buffer.concat(chunks)));
          const forwarded = await fetch(upstream.url, {
            method: 'POST',
            headers: { 'content-type': String(req.headers['content-type']), 'content-encoding': 'gzip' },
            body: Buffer.concat(chunks),
          });
          res.writeHead(forwarded.status, { 'content-type': String(forwarded.headers.get('content-type')) });
          res.end(Buffer.from(await forwarded.arrayBuffer()));
        });
      });
      await new Promise<void>((resolve) => tap.listen(0, '127.0.0.1', resolve));
      closers.push(() => new Promise<void>((resolve) => tap.close(() => resolve())));
      const url = `http://127.0.0.1:${(tap.address() as AddressInfo).port}/v1/logs`;

      const batch = [outboxEvent(1), outboxEvent(2), outboxEvent(3, '{"deep":[[[{"x":"\\ud83d\\ude00"}]]]}')];
      const verdicts = await sink(url, { encoding }).send(batch, new AbortController().signal);
      expect(verdicts).toEqual(batch.map(() => ({ kind: 'delivered' })));

      const decoded = upstream.got[0]?.decoded as DecodedLogs;
      expect(decoded.problems).toEqual([]);
      expect(decoded.records.map(ids)).toEqual(['ev-1', 'ev-2', 'ev-3']);
      decoded.records.forEach((r, i) => {
        const line = (batch[i] as OutboxEvent).line;
        expect(r.record.body).toEqual({ kind: 'string', value: line.slice(line.indexOf(',"raw":') + 7, -1) });
      });
      expect(decoded.records[0]?.record.timeUnixNano).toBe(1_796_202_001_123_456_789n);
      const anomalies = attribute(decoded.records[1]?.record.attributes ?? [], 'auditlog.anomalies');
      expect(anomalies).toEqual({
        kind: 'array',
        values: [{ kind: 'string', value: 'time taken from receivedTimeStamp' }],
      });
      // What the receiver decoded encodes to exactly the bytes the sink sent.
      const sent = bodies[0] as Buffer;
      const reencoded =
        encoding === 'json'
          ? Buffer.from(encodeJsonRequest(decodeJsonRequest(sent.toString('utf8')).request))
          : Buffer.from(encodeProtobufRequest(decodeProtobufRequest(sent).request));
      expect(reencoded.equals(sent)).toBe(true);
    });
  }

  it('dead-letters a batch with rejected records whole, naming the store’s message', async () => {
    const { url } = await receiver((r) => ({
      kind: 'accepted',
      rejected: r.records.length === 1 ? 1 : 2,
      message: 'bad attribute',
    }));
    const many = await sink(url).send(
      [outboxEvent(1), outboxEvent(2), outboxEvent(3)],
      new AbortController().signal,
    );
    expect(many.every((v) => v.kind === 'rejected')).toBe(true);
    expect(many[0]).toMatchObject({
      reason: expect.stringMatching(/rejected 2 of the 3 events.*bad attribute.*redrive may duplicate/),
    });
    const one = await sink(url).send([outboxEvent(4)], new AbortController().signal);
    expect(one[0]).toMatchObject({
      kind: 'rejected',
      reason: expect.stringMatching(/rejected this event: bad attribute/),
    });
  });

  it('retries 429 and 503 after Retry-After', async () => {
    let answer: ExportAnswer = { kind: 'busy', message: 'slow down', retryAfterSeconds: 7 };
    const { url } = await receiver(() => answer);
    const busy = await sink(url).send([outboxEvent(1)], new AbortController().signal);
    expect(busy[0]).toMatchObject({
      kind: 'retry',
      retryAfterMs: 7_000,
      reason: expect.stringMatching(/HTTP 429: slow down/),
    });
    answer = { kind: 'unavailable', message: 'down', retryAfterSeconds: 3 };
    const down = await sink(url).send([outboxEvent(1)], new AbortController().signal);
    expect(down[0]).toMatchObject({ kind: 'retry', retryAfterMs: 3_000 });
  });

  it('narrows a 400 down to the event the store refuses and delivers the rest', async () => {
    const { url, got } = await receiver((r) =>
      r.records.some((x) => ids(x) === 'ev-3') ? { kind: 'invalid', message: 'ev-3 is odd' } : accepted,
    );
    const verdicts = await sink(url, { encoding: 'json' }).send(
      [1, 2, 3, 4, 5].map((n) => outboxEvent(n)),
      new AbortController().signal,
    );
    expect(verdicts.map((v) => v.kind)).toEqual([
      'delivered',
      'delivered',
      'rejected',
      'delivered',
      'delivered',
    ]);
    expect(verdicts[2]).toMatchObject({ reason: expect.stringMatching(/refused event ev-3: ev-3 is odd/) });
    expect(got.length).toBeGreaterThan(1);
  });

  it('waits out a setup problem (401) instead of dead-lettering', async () => {
    const { url } = await receiver(() => accepted, 'expected-token');
    const verdicts = await sink(url).send([outboxEvent(1)], new AbortController().signal);
    expect(verdicts[0]).toMatchObject({
      kind: 'retry',
      reason: expect.stringMatching(/HTTP 401.*setup problem/),
    });
    process.env.OTLP_SINK_TEST_TOKEN = 'expected-token';
    const ok = await sink(url, { auth: { bearerToken: '${OTLP_SINK_TEST_TOKEN}' } }).send(
      [outboxEvent(1)],
      new AbortController().signal,
    );
    expect(ok[0]).toEqual({ kind: 'delivered' });
  });
});
