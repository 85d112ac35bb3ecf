import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { GenericContainer, type StartedTestContainer, Wait } from 'testcontainers';
import { request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { withEnv } from '../../src/config/fields.ts';
import { elasticsearchSinkSchema } from '../../src/sinks/elasticsearch/config.ts';
import { ElasticsearchSink } from '../../src/sinks/elasticsearch/sink.ts';
import { lokiSinkSchema } from '../../src/sinks/loki/config.ts';
import { LokiSink } from '../../src/sinks/loki/sink.ts';
import { s3SinkSchema } from '../../src/sinks/s3/config.ts';
import { S3Sink } from '../../src/sinks/s3/sink.ts';
import { isoMicros, outboxEvent } from '../sinks/events.ts';
import { silentLogger } from '../support/logger.ts';
import { dockerUnavailable } from './docker.ts';

/**
 * The sinks against the real stores, wherever a container engine is reachable (CI with Docker, a
 * developer laptop). Elsewhere every suite is skipped with the reason printed.
 */
const skipReason = await dockerUnavailable();
const containers: StartedTestContainer[] = [];
afterAll(async () => {
  await Promise.all(containers.map((c) => c.stop()));
});
const signal = new AbortController().signal;
const deps = { log: silentLogger, instanceId: 'containers' };

async function json(url: string, init: { method?: 'GET' | 'POST'; body?: string } = {}): Promise<unknown> {
  const res = await request(url, {
    method: init.method ?? 'GET',
    ...(init.body ? { body: init.body, headers: { 'content-type': 'application/json' } } : {}),
  });
  return res.body.json();
}

describe.skipIf(skipReason !== undefined)('real Loki (grafana/loki)', () => {
  it('stores each event once at its own time, refuses too-old entries per entry', {
    timeout: 180_000,
  }, async () => {
    const loki = await new GenericContainer('grafana/loki:3.5.0')
      .withExposedPorts(3100)
      .withCommand(['-config.file=/etc/loki/local-config.yaml'])
      .withWaitStrategy(Wait.forHttp('/ready', 3100).forStatusCode(200))
      .start();
    containers.push(loki);
    const url = `http://${loki.getHost()}:${loki.getMappedPort(3100)}`;
    const settings = lokiSinkSchema.parse({ url, tenant: 'fake', limits: { rejectOlderThan: '0s' } });
    const sink = new LokiSink({ name: 'loki', type: 'loki', settings }, deps);
    const now = Date.now();
    const events = [
      outboxEvent({ id: 'c1', time: isoMicros(now - 5_000) }),
      outboxEvent({ id: 'c2', time: isoMicros(now - 4_000) }),
    ];
    const old = outboxEvent({ id: 'old', time: isoMicros(now - 30 * 86_400_000) });
    const verdicts = await sink.send([...events, old], signal);
    expect(verdicts.map((v) => v.kind)).toEqual(['delivered', 'delivered', 'rejected']);
    await sink.send(events, signal); // again: Loki drops identical entries
    const query = new URLSearchParams({
      query: '{service_name="auditlog-shipper"}',
      start: String((now - 60_000) * 1e6),
      end: String((now + 60_000) * 1e6),
    });
    const result = (await json(`${url}/loki/api/v1/query_range?${query}`)) as {
      data: { result: Array<{ values: Array<[string, string]> }> };
    };
    const lines = result.data.result.flatMap((r) => r.values.map((v) => v[1]));
    expect(lines.sort()).toEqual(events.map((e) => e.line).sort());
    await sink.close();
  });
});

for (const flavor of ['elasticsearch', 'opensearch'] as const) {
  describe.skipIf(skipReason !== undefined)(`real ${flavor}`, () => {
    it('creates documents once in the data stream, 409 on replay', { timeout: 300_000 }, async () => {
      const container =
        flavor === 'elasticsearch'
          ? new GenericContainer('docker.elastic.co/elasticsearch/elasticsearch:9.1.0').withEnvironment({
              'discovery.type': 'single-node',
              'xpack.security.enabled': 'false',
              ES_JAVA_OPTS: '-Xms512m -Xmx512m',
            })
          : new GenericContainer('opensearchproject/opensearch:2.19.0').withEnvironment({
              'discovery.type': 'single-node',
              DISABLE_SECURITY_PLUGIN: 'true',
              OPENSEARCH_JAVA_OPTS: '-Xms512m -Xmx512m',
            });
      const started = await container
        .withExposedPorts(9200)
        .withWaitStrategy(Wait.forHttp('/_cluster/health?wait_for_status=yellow', 9200).forStatusCode(200))
        .withStartupTimeout(240_000)
        .start();
      containers.push(started);
      const url = `http://${started.getHost()}:${started.getMappedPort(9200)}`;
      const settings = elasticsearchSinkSchema.parse({ url, manageTemplate: true });
      const sink = new ElasticsearchSink({ name: flavor, type: flavor, settings }, deps);
      const events = [outboxEvent({ id: `${flavor}-1` }), outboxEvent({ id: `${flavor}-2` })];
      expect((await sink.send(events, signal)).map((v) => v.kind)).toEqual(['delivered', 'delivered']);
      expect((await sink.send(events, signal)).map((v) => v.kind)).toEqual(['duplicate', 'duplicate']);
      await json(`${url}/audit-events/_refresh`, { method: 'POST' });
      const count = (await json(`${url}/audit-events/_count`)) as { count: number };
      expect(count.count).toBe(2);
      await sink.close();
    });
  });
}

describe.skipIf(skipReason !== undefined)('real MinIO', () => {
  it('writes objects create-only: a replay is a duplicate, not a second object', {
    timeout: 180_000,
  }, async () => {
    const minio = await new GenericContainer('minio/minio:latest')
      .withCommand(['server', '/data'])
      .withEnvironment({ MINIO_ROOT_USER: 'shipper', MINIO_ROOT_PASSWORD: 'shipper-secret' })
      .withExposedPorts(9000)
      .withWaitStrategy(Wait.forHttp('/minio/health/ready', 9000).forStatusCode(200))
      .start();
    containers.push(minio);
    const endpoint = `http://${minio.getHost()}:${minio.getMappedPort(9000)}`;
    const admin = new S3Client({
      region: 'us-east-1',
      endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'shipper', secretAccessKey: 'shipper-secret' },
    });
    await admin.send(new CreateBucketCommand({ Bucket: 'audit' }));
    const settings = withEnv({ K: 'shipper', S: 'shipper-secret' }, () =>
      s3SinkSchema.parse({
        bucket: 'audit',
        endpoint,
        auth: { accessKeyId: '${K}', secretAccessKey: '${S}' },
      }),
    );
    const sink = new S3Sink({ name: 's3', type: 's3', settings }, deps);
    const batch = [outboxEvent({ id: 'm1' }), outboxEvent({ id: 'm2' })];
    expect((await sink.send(batch, signal)).map((v) => v.kind)).toEqual(['delivered', 'delivered']);
    expect((await sink.send(batch, signal)).map((v) => v.kind)).toEqual(['duplicate', 'duplicate']);
    await sink.close();
    admin.destroy();
  });
});

describe.skipIf(skipReason === undefined)('real-image sink suites', () => {
  it('are skipped: no container engine here', () => {
    console.warn(`SKIPPED real Loki, Elasticsearch, OpenSearch and MinIO suites: ${skipReason}`);
    expect(skipReason).toBeDefined();
  });
});
