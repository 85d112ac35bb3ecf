/**
 * Push throughput (issue 10 "Speed"): the stackit-telemetry receiver, which answers only after each
 * request is committed to Redis, against a bare OTLP receiver that decodes and acknowledges without
 * committing. Both are the shipper's own OTLP/HTTP server, in this process; a client sends pre-encoded
 * protobuf requests of `batch` STACKIT records each, `concurrency` at a time, as a router would.
 */

import { Redis } from 'ioredis';
import { pino } from 'pino';
import { request } from 'undici';
import { Secret } from '../src/config/secret.ts';
import { Metrics } from '../src/observability/metrics.ts';
import type { KeyValue, LogRecord } from '../src/otlp/model.ts';
import { EMPTY_RECORD } from '../src/otlp/model.ts';
import { encodeProtobufRequest } from '../src/otlp/protobuf.ts';
import { OtlpHttpReceiver } from '../src/otlp/receiver/http.ts';
import { RedisKeys } from '../src/pipeline/keys.ts';
import { PushCommitter } from '../src/pipeline/push-commit.ts';
import { PushReceiver } from '../src/pipeline/push-receiver.ts';
import { telemetryProviderSchema } from '../src/sources/stackit-telemetry/config.ts';
import { stackitTelemetry } from '../src/sources/stackit-telemetry/index.ts';

export interface PushRun {
  readonly records: number;
  readonly seconds: number;
  readonly recordsPerSecond: number;
}

export interface PushResult {
  readonly batch: number;
  readonly concurrency: number;
  readonly bare: PushRun;
  readonly shipper: PushRun;
}

const TOKEN = 'bench-token';
const log = pino({ level: 'silent' });

/** Requests of `batch` records each, encoded once: the client's cost is not what is measured. */
function requests(total: number, batch: number, scopes: number): Buffer[] {
  const bodies: Buffer[] = [];
  const baseNs = BigInt(Date.now() - 3_600_000) * 1_000_000n;
  for (let first = 0; first < total; first += batch) {
    const records: LogRecord[] = [];
    for (let n = first; n < Math.min(total, first + batch); n++) {
      const project = `00000000-0000-4000-8000-${String(n % scopes).padStart(12, '0')}`;
      const attributes: KeyValue[] = Object.entries({
        'service.name': 'secrets-manager',
        'service.instance.id': `instance-${n}`,
        'cloud.provider': 'stackit',
        'cloud.region': 'eu01',
        'stackit.resource.type': 'PROJECT',
        'stackit.resource.id': project,
        'stackit.log.id': `bench-${n}`,
        'stackit.log.type': 'AUDIT',
        'stackit.action': 'secrets-manager.apikey.delete',
        'stackit.initiator': 'user@example.com',
        'stackit.request.body': JSON.stringify({ name: `key-${n}`, labels: { team: 'platform' } }),
        'client.address': '192.0.2.7',
      }).map(([key, value]) => ({ key, value: { kind: 'string', value } }));
      records.push({
        ...EMPTY_RECORD,
        timeUnixNano: baseNs + BigInt(n) * 1_000_000n,
        severityText: 'INFO',
        body: { kind: 'string', value: `API key ${n} deleted` },
        attributes,
      });
    }
    bodies.push(
      Buffer.from(
        encodeProtobufRequest({
          resourceLogs: [
            {
              resource: { attributes: [], droppedAttributesCount: 0 },
              schemaUrl: '',
              scopeLogs: [
                {
                  scope: {
                    name: 'stackit-audit-provider',
                    version: '',
                    attributes: [],
                    droppedAttributesCount: 0,
                  },
                  schemaUrl: '',
                  logRecords: records,
                },
              ],
            },
          ],
        }),
      ),
    );
  }
  return bodies;
}

async function send(
  url: string,
  bodies: readonly Buffer[],
  concurrency: number,
  records: number,
): Promise<PushRun> {
  let next = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < bodies.length) {
      const body = bodies[next++] as Buffer;
      const response = await request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${TOKEN}` },
        body,
      });
      await response.body.arrayBuffer();
      if (response.statusCode !== 200) throw new Error(`push answered ${response.statusCode}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  return { records, seconds: Math.round(seconds * 10) / 10, recordsPerSecond: Math.round(records / seconds) };
}

export async function push(
  redisUrl: string,
  total: number,
  batch = 500,
  concurrency = 4,
): Promise<PushResult> {
  const bodies = requests(total, batch, 50);
  const bare = new OtlpHttpReceiver({
    host: '127.0.0.1',
    port: 0,
    auth: { kind: 'bearer', token: new Secret(TOKEN, 'bench') },
    maxBodyBytes: 64 * 1024 * 1024,
    handler: async () => ({ kind: 'accepted', rejected: 0, message: '' }),
    log,
  });
  const barePort = await bare.listen();
  const bareRun = await send(`http://127.0.0.1:${barePort}/v1/logs`, bodies, concurrency, total);
  await bare.close();

  process.env.BENCH_ROUTER_TOKEN = TOKEN;
  const settings = telemetryProviderSchema.parse({
    listen: { host: '127.0.0.1', port: 0 },
    auth: { bearerToken: '${BENCH_ROUTER_TOKEN}' },
    allowPlainHttp: true,
    maxBodySize: 64 * 1024 * 1024,
  });
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const keys = new RedisKeys('{bench-push}');
  const receiver = new PushReceiver({
    provider: { name: 'router', type: 'stackit-telemetry', settings },
    push: stackitTelemetry.push as NonNullable<typeof stackitTelemetry.push>,
    redis,
    committer: new PushCommitter(redis, keys),
    sinks: () => ['archive'],
    maxOutbox: 10_000_000,
    metrics: new Metrics(),
    log,
  });
  const ports = await receiver.start();
  const shipperRun = await send(`http://127.0.0.1:${ports.http}/v1/logs`, bodies, concurrency, total);
  const committed = await redis.xlen(keys.outbox('archive'));
  await receiver.close();
  await redis.del(keys.outbox('archive'));
  redis.disconnect();
  if (committed !== total) throw new Error(`push benchmark: ${committed} of ${total} records committed`);
  return { batch, concurrency, bare: bareRun, shipper: shipperRun };
}
