import { createHash } from 'node:crypto';
import { copyFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { credentials, Metadata } from '@grpc/grpc-js';
import type { HrTime } from '@opentelemetry/api';
import { OTLPLogExporter as GrpcExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPLogExporter as JsonExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as ProtoExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchLogRecordProcessor,
  LoggerProvider,
  type LogRecordExporter,
  type ReadableLogRecord,
} from '@opentelemetry/sdk-logs';
import { Agent, fetch } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { decodeJsonRequest, encodeJsonRequest } from '../../src/otlp/json.ts';
import { decodeStatus } from '../../src/otlp/proto.ts';
import { encodeProtobufRequest } from '../../src/otlp/protobuf.ts';
import {
  outboxEvents,
  PROJECT,
  type ReceiverHarness,
  selfSignedCertificate,
  stackitAttributes,
  startReceiver,
  TOKEN,
} from '../support/otlp.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

let redis: TestRedis;
let harness: ReceiverHarness | undefined;

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
  await harness?.close();
  harness = undefined;
});

// Recent event times: ids of a scope nobody polls are remembered for `dedupeWindow` by event time.
const BASE_SECONDS = Math.floor(Date.now() / 3_600_000) * 3_600 - 86_400;
const BASE_ISO = new Date(BASE_SECONDS * 1000).toISOString().slice(0, 17);

/** Pushes `count` STACKIT records through an official SDK exporter and waits until it has sent them. */
async function pushWithSdk(exporter: LogRecordExporter, first: number, count: number): Promise<void> {
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({}),
    processors: [new BatchLogRecordProcessor({ exporter, maxExportBatchSize: 50, scheduledDelayMillis: 10 })],
  });
  const logger = provider.getLogger('stackit-audit-provider');
  for (let n = first; n < first + count; n++) {
    logger.emit({
      timestamp: [BASE_SECONDS + n, 123_456_789] as HrTime,
      severityText: 'INFO',
      body: `API key ${n} deleted`,
      attributes: stackitAttributes(n),
    });
  }
  await provider.forceFlush();
  await provider.shutdown();
}

function bearer(): Record<string, string> {
  return { Authorization: `Bearer ${TOKEN}` };
}

async function expectExactlyOnce(ids: string[]): Promise<Array<Record<string, unknown>>> {
  const events = await outboxEvents(redis.client, (harness as ReceiverHarness).keys);
  expect(events.map((e) => e.id).sort()).toEqual([...ids].sort());
  return events;
}

const ids = (first: number, count: number): string[] =>
  Array.from({ length: count }, (_, i) => `log-${String(first + i).padStart(6, '0')}`);

describe('the stackit-telemetry receiver, fed by the OpenTelemetry SDK exporters', () => {
  it('OTLP/HTTP protobuf with gzip: every record lands once, mapped to the envelope, raw verifiable', async () => {
    harness = await startReceiver(redis.client);
    const exporter = new ProtoExporter({ url: harness.url, headers: bearer(), compression: 'gzip' as never });
    await pushWithSdk(exporter, 0, 120);
    const events = await expectExactlyOnce(ids(0, 120));
    const first = events.find((e) => e.id === 'log-000003') as Record<string, unknown>;
    expect(first).toMatchObject({
      provider: 'stackit',
      scope: { kind: 'project', id: PROJECT },
      time: `${BASE_ISO}03.123456789Z`,
      action: 'secrets-manager.apikey.delete',
      actor: { id: 'user-1@example.com' },
      sourceIp: '192.0.2.7',
      resource: { id: 'instance-3', type: 'secrets-manager' },
    });
    expect(first.anomalies).toBeUndefined();
    const raw = JSON.stringify(first.raw);
    expect(createHash('sha256').update(raw).digest('hex')).toBe(first.rawSha256);
    // raw is a valid OTLP/JSON request holding exactly this record, in canonical form.
    const again = decodeJsonRequest(raw);
    expect(again.records).toHaveLength(1);
    expect(encodeJsonRequest(again.request)).toBe(raw);
    expect(again.records[0]?.scope?.name).toBe('stackit-audit-provider');
  });

  it('OTLP/HTTP JSON: lands too, and a redelivery of the same records adds nothing', async () => {
    harness = await startReceiver(redis.client);
    // The records once, then exported twice as a retrying router re-sends a batch: the same records.
    const records: ReadableLogRecord[] = [];
    const collector: LogRecordExporter = {
      export: (batch, done) => {
        records.push(...batch);
        done({ code: 0 });
      },
      shutdown: async () => undefined,
      forceFlush: async () => undefined,
    };
    await pushWithSdk(collector, 0, 30);
    const exporter = new JsonExporter({ url: harness.url, headers: bearer() });
    for (let i = 0; i < 2; i++) {
      const result = await new Promise<{ code: number }>((resolve) => exporter.export(records, resolve));
      expect(result.code).toBe(0);
    }
    await exporter.shutdown();
    await expectExactlyOnce(ids(0, 30));
    expect((await harness.metrics.pushRecords.get()).values).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ labels: { provider: 'stackit-push', outcome: 'committed' }, value: 30 }),
        expect.objectContaining({ labels: { provider: 'stackit-push', outcome: 'duplicate' }, value: 30 }),
      ]),
    );
  });

  it('OTLP/gRPC with gzip: lands once', async () => {
    harness = await startReceiver(redis.client);
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${TOKEN}`);
    const exporter = new GrpcExporter({
      url: `http://127.0.0.1:${harness.grpcPort}`,
      credentials: credentials.createInsecure(),
      metadata,
      compression: 'gzip' as never,
    });
    await pushWithSdk(exporter, 500, 80);
    await expectExactlyOnce(ids(500, 80));
  });

  it('refuses wrong or missing credentials on both transports and commits nothing', async () => {
    harness = await startReceiver(redis.client);
    const body = encodeProtobufRequest({ resourceLogs: [] });
    for (const authorization of [
      undefined,
      'Bearer wrong',
      `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`,
    ]) {
      const response = await fetch(harness.url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-protobuf', ...(authorization ? { authorization } : {}) },
        body,
      });
      expect(response.status).toBe(401);
      expect(decodeStatus(new Uint8Array(await response.arrayBuffer())).message).toMatch(/credentials/);
    }
    const metadata = new Metadata();
    metadata.set('authorization', 'Bearer wrong');
    const exporter = new GrpcExporter({
      url: `http://127.0.0.1:${harness.grpcPort}`,
      credentials: credentials.createInsecure(),
      metadata,
    });
    await pushWithSdk(exporter, 0, 1);
    expect(await redis.client.xlen(harness.keys.outbox('archive'))).toBe(0);
  });

  it('accepts basic auth when configured so', async () => {
    harness = await startReceiver(redis.client, {
      provider: { auth: { basic: { username: 'router', password: '${ROUTER_TOKEN}' } } },
    });
    const authorization = `Basic ${Buffer.from(`router:${TOKEN}`).toString('base64')}`;
    await pushWithSdk(new ProtoExporter({ url: harness.url, headers: { authorization } }), 0, 3);
    await expectExactlyOnce(ids(0, 3));
  });
});

describe('hostile and malformed requests', () => {
  const post = (url: string, body: Buffer | string, type: string, extra: Record<string, string> = {}) =>
    fetch(url, { method: 'POST', headers: { 'content-type': type, ...bearer(), ...extra }, body });

  function jsonRequest(records: unknown[]): string {
    return JSON.stringify({
      resourceLogs: [{ scopeLogs: [{ scope: { name: 'stackit-audit-provider' }, logRecords: records }] }],
    });
  }
  function jsonRecord(n: number, overrides: Record<string, string> = {}): Record<string, unknown> {
    return {
      timeUnixNano: `${BASE_SECONDS + n}000000001`,
      attributes: Object.entries(stackitAttributes(n, overrides)).map(([key, value]) => ({
        key,
        value: { stringValue: value },
      })),
    };
  }

  it('answers bad protobuf with a 400 naming the problem', async () => {
    harness = await startReceiver(redis.client);
    const response = await post(
      harness.url,
      Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f]),
      'application/x-protobuf',
    );
    expect(response.status).toBe(400);
    expect(decodeStatus(new Uint8Array(await response.arrayBuffer())).message).toMatch(
      /not a protobuf ExportLogsServiceRequest/,
    );
  });

  it('commits the valid records of a request with wrong types and deep nesting, and names the bad ones in a 400', async () => {
    harness = await startReceiver(redis.client);
    let deep: unknown = { stringValue: 'leaf' };
    for (let i = 0; i < 40; i++) deep = { arrayValue: { values: [deep] } };
    const wrongType = { ...jsonRecord(1), timeUnixNano: { not: 'a number' } };
    const tooDeep = jsonRecord(2);
    (tooDeep.attributes as unknown[]).push({ key: 'deep', value: deep });
    const response = await post(
      harness.url,
      jsonRequest([jsonRecord(0), wrongType, tooDeep, jsonRecord(3)]),
      'application/json',
    );
    expect(response.status).toBe(400);
    const { message } = (await response.json()) as { message: string };
    expect(message).toContain('logRecords[1].timeUnixNano: expected a non-negative 64-bit integer');
    expect(message).toContain('logRecords[2].attributes[16].value');
    expect(message).toContain('nested deeper than 32 levels');
    await expectExactlyOnce(['log-000000', 'log-000003']);
  });

  it('commits a record without stackit.log.id with an anomaly and a content-hash id, as partial success', async () => {
    harness = await startReceiver(redis.client);
    const noId = jsonRecord(1);
    noId.attributes = (noId.attributes as Array<{ key: string }>).filter((a) => a.key !== 'stackit.log.id');
    const response = await post(harness.url, jsonRequest([jsonRecord(0), noId]), 'application/json');
    expect(response.status).toBe(200);
    const body = (await response.json()) as {
      partialSuccess: { rejectedLogRecords: string; errorMessage: string };
    };
    expect(body.partialSuccess.rejectedLogRecords).toBe('1');
    expect(body.partialSuccess.errorMessage).toMatch(/logRecords\[1]: stackit.log.id: missing/);
    const events = await outboxEvents(redis.client, harness.keys);
    expect(events).toHaveLength(2);
    const anomalous = events.find((e) => e.id !== 'log-000000') as Record<string, unknown>;
    expect(anomalous.id).toMatch(/^otlp-sha256:[0-9a-f]{64}$/);
    expect(anomalous.anomalies).toEqual([expect.stringMatching(/stackit\.log\.id: missing/)]);
  });

  it('refuses a 50 MB body and a gzip bomb with a 400, holding neither in memory', async () => {
    harness = await startReceiver(redis.client);
    const huge = Buffer.alloc(50 * 1024 * 1024, 0x20);
    const big = await post(harness.url, huge, 'application/json');
    expect(big.status).toBe(400);
    expect(((await big.json()) as { message: string }).message).toMatch(
      /exceeds the limit of 16777216 bytes/,
    );
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20));
    expect(bomb.length).toBeLessThan(1024 * 1024);
    const bombed = await post(harness.url, bomb, 'application/json', { 'content-encoding': 'gzip' });
    expect(bombed.status).toBe(400);
    expect(((await bombed.json()) as { message: string }).message).toMatch(/inflates beyond the limit/);
  });

  it('refuses a JSON body that is not UTF-8 rather than altering it', async () => {
    harness = await startReceiver(redis.client);
    const body = Buffer.from(jsonRequest([jsonRecord(0)]));
    body[body.indexOf('key-0') + 4] = 0xff;
    const response = await post(harness.url, body, 'application/json');
    expect(response.status).toBe(400);
    expect(((await response.json()) as { message: string }).message).toBe('JSON body is not valid UTF-8');
    expect(await redis.client.xlen(harness.keys.outbox('archive'))).toBe(0);
  });

  it('refuses unknown content types and paths clearly', async () => {
    harness = await startReceiver(redis.client);
    expect((await post(harness.url, 'x', 'text/plain')).status).toBe(415);
    expect((await post(harness.url.replace('/v1/logs', '/v1/traces'), 'x', 'application/json')).status).toBe(
      404,
    );
  });
});

describe('backpressure: the sender keeps the data', () => {
  it('answers 429 with Retry-After when an outbox is full, committing nothing', async () => {
    harness = await startReceiver(redis.client, { maxOutbox: 5 });
    const exporterBody = (first: number, count: number) =>
      jsonRequestOf(Array.from({ length: count }, (_, i) => first + i));
    const ok = await fetch(harness.url, { method: 'POST', headers: json(), body: exporterBody(0, 5) });
    expect(ok.status).toBe(200);
    const refused = await fetch(harness.url, { method: 'POST', headers: json(), body: exporterBody(5, 2) });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await refused.json()) as { message: string }).message).toMatch(
      /outbox of sink "archive" is full/,
    );
    expect(await redis.client.xlen(harness.keys.outbox('archive'))).toBe(5);
  });

  it('answers 503 with Retry-After while Redis is unreachable, and accepts the retry once it is back', async () => {
    const isolated = await startTestRedis();
    try {
      const client = isolated.connect();
      harness = await startReceiver(client, { commitTimeoutMs: 2_000 });
      await isolated.server.kill();
      await expect.poll(() => client.status).not.toBe('ready');
      const down = await fetch(harness.url, { method: 'POST', headers: json(), body: jsonRequestOf([0, 1]) });
      expect(down.status).toBe(503);
      expect(Number(down.headers.get('retry-after'))).toBeGreaterThan(0);
      await isolated.server.start();
      await expect.poll(() => client.status, { timeout: 15_000 }).toBe('ready');
      const up = await fetch(harness.url, { method: 'POST', headers: json(), body: jsonRequestOf([0, 1]) });
      expect(up.status).toBe(200);
      expect(await client.xlen(harness.keys.outbox('archive'))).toBe(2);
    } finally {
      await harness?.close();
      harness = undefined;
      await isolated.stop();
    }
  });

  it('answers gRPC RESOURCE_EXHAUSTED with a retry delay when an outbox is full', async () => {
    harness = await startReceiver(redis.client, { maxOutbox: 1 });
    await redis.client.xadd(harness.keys.outbox('archive'), '*', 'id', 'x');
    const { Client } = await import('@grpc/grpc-js');
    const client = new Client(`127.0.0.1:${harness.grpcPort}`, credentials.createInsecure());
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${TOKEN}`);
    const error = await new Promise<{ code: number; metadata: Metadata }>((resolve) => {
      client.makeUnaryRequest(
        '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from(encodeProtobufRequest(decodeJsonRequest(jsonRequestOf([0])).request)),
        metadata,
        (err) => resolve(err as unknown as { code: number; metadata: Metadata }),
      );
    });
    client.close();
    expect(error.code).toBe(8);
    expect(error.metadata.get('grpc-status-details-bin')).toHaveLength(1);
  });
});

describe('TLS', () => {
  it('serves HTTPS from the files and reloads them when they change', async () => {
    const first = selfSignedCertificate('first');
    const second = selfSignedCertificate('second');
    harness = await startReceiver(redis.client, {
      provider: {
        allowPlainHttp: false,
        tls: { certFile: first.certFile, keyFile: first.keyFile, reloadInterval: '1s' },
      },
    });
    const url = harness.url;
    const post = (ca: string) =>
      fetch(url, {
        method: 'POST',
        headers: json(),
        body: jsonRequestOf([0]),
        dispatcher: new Agent({ connect: { ca } }),
      });
    expect((await post(first.cert)).status).toBe(200);
    await expect(post(second.cert)).rejects.toThrow();
    copyFileSync(second.certFile, first.certFile);
    copyFileSync(second.keyFile, first.keyFile);
    await expect
      .poll(
        async () =>
          await post(second.cert).then(
            (r) => r.status,
            () => 0,
          ),
        { timeout: 15_000 },
      )
      .toBe(200);
  });

  it('requires a client certificate when clientCaFile is set', async () => {
    const server = selfSignedCertificate('server');
    const clientCert = selfSignedCertificate('client');
    harness = await startReceiver(redis.client, {
      provider: {
        allowPlainHttp: false,
        tls: { certFile: server.certFile, keyFile: server.keyFile, clientCaFile: clientCert.certFile },
      },
    });
    const post = (connect: Record<string, unknown>) =>
      fetch((harness as ReceiverHarness).url, {
        method: 'POST',
        headers: json(),
        body: jsonRequestOf([0]),
        dispatcher: new Agent({ connect: { ca: server.cert, ...connect } }),
      });
    await expect(post({})).rejects.toThrow();
    const { readFileSync } = await import('node:fs');
    const ok = await post({ cert: clientCert.cert, key: readFileSync(clientCert.keyFile, 'utf8') });
    expect(ok.status).toBe(200);
  });
});

function json(): Record<string, string> {
  return { 'content-type': 'application/json', ...bearer() };
}

function jsonRequestOf(numbers: number[]): string {
  return JSON.stringify({
    resourceLogs: [
      {
        scopeLogs: [
          {
            scope: { name: 'stackit-audit-provider' },
            logRecords: numbers.map((n) => ({
              timeUnixNano: `${BASE_SECONDS + n}000000001`,
              attributes: Object.entries(stackitAttributes(n)).map(([key, value]) => ({
                key,
                value: { stringValue: value },
              })),
            })),
          },
        ],
      },
    ],
  });
}
