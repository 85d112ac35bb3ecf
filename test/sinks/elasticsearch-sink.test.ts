import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { withEnv } from '../../src/config/fields.ts';
import { elasticsearchSinkSchema } from '../../src/sinks/elasticsearch/config.ts';
import { ElasticsearchSink } from '../../src/sinks/elasticsearch/sink.ts';
import type { Verdict } from '../../src/sinks/sink.ts';
import { type EsServerOptions, EsTestServer } from '../support/es-server.ts';
import { memoryLogger, silentLogger } from '../support/logger.ts';
import { outboxEvent } from './events.ts';

const API_KEY = 'VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==';
let server: EsTestServer;
const sinks: ElasticsearchSink[] = [];
const signal = new AbortController().signal;
const kinds = (verdicts: readonly Verdict[]): string[] => verdicts.map((v) => v.kind);

async function startServer(options: EsServerOptions = {}): Promise<void> {
  server = new EsTestServer({ authorization: `ApiKey ${API_KEY}`, ...options });
  await server.start();
}

function sink(extra: Record<string, unknown> = {}, log = silentLogger): ElasticsearchSink {
  const settings = withEnv({ ES_API_KEY: API_KEY }, () =>
    elasticsearchSinkSchema.parse({ url: server.url, auth: { apiKey: '${ES_API_KEY}' }, ...extra }),
  );
  const s = new ElasticsearchSink(
    { name: 'es', type: 'elasticsearch', settings },
    { log, instanceId: 'test' },
  );
  sinks.push(s);
  return s;
}

beforeEach(async () => {
  await startServer();
});
afterEach(async () => {
  await Promise.all(sinks.splice(0).map((s) => s.close()));
  await server.stop();
});

describe('ElasticsearchSink', () => {
  it('creates each event in the data stream with _id = event id and @timestamp = its time, raw kept byte for byte', async () => {
    const a = outboxEvent({ id: 'ev-a', time: '2025-03-04T05:06:07.123456Z' });
    const b = outboxEvent({ id: 'ev-b' });
    expect(kinds(await sink({ manageTemplate: true }).send([a, b], signal))).toEqual([
      'delivered',
      'delivered',
    ]);
    expect(server.templates()).toEqual(['auditlog-shipper']);
    expect(server.dataStreams()).toEqual(['audit-events']);
    const doc = server.docs().find((d) => d.id === 'ev-a');
    expect(doc?.index).toBe('.ds-audit-events-000001');
    expect(doc?.source).toBe(`{"@timestamp":"2025-03-04T05:06:07.123456Z",${a.line.slice(1)}`);
    const bulk = server.requests.find((r) => r.path === '/_bulk');
    expect(bulk?.encoding).toBe('gzip');
    expect(bulk?.query).toContain('include_source_on_error=false');
  });

  it('reports a re-sent batch as duplicates (409 on create) and stores one copy', async () => {
    const s = sink({ manageTemplate: true });
    const batch = [outboxEvent({ id: 'd1' }), outboxEvent({ id: 'd2' })];
    await s.send(batch, signal);
    expect(kinds(await s.send(batch, signal))).toEqual(['duplicate', 'duplicate']);
    expect(server.docs()).toHaveLength(2);
  });

  it('retries only the items the cluster pushed back (429), alone', async () => {
    const s = sink({ manageTemplate: true });
    server.rejectItem('busy');
    const verdicts = await s.send([outboxEvent({ id: 'ok' }), outboxEvent({ id: 'busy' })], signal);
    expect(kinds(verdicts)).toEqual(['delivered', 'retry']);
    expect((verdicts[1] as { reason: string }).reason).toContain('es_rejected_execution_exception');
    expect(kinds(await s.send([outboxEvent({ id: 'busy' })], signal))).toEqual(['delivered']);
    expect(
      server
        .docs()
        .map((d) => d.id)
        .sort(),
    ).toEqual(['busy', 'ok']);
  });

  it('dead-letters a document the mapping refuses, with the error type and reason, and stores the rest', async () => {
    // Plain daily indices without a template: the first event fixes raw.v as a number.
    const s = sink({ mode: 'index', target: 'audit-{date}' });
    const first = outboxEvent({ id: 'm1', time: '2025-01-02T03:04:05.000001Z', rawExtra: ',"v":1' });
    const clash = outboxEvent({ id: 'm2', time: '2025-01-02T09:00:00Z', rawExtra: ',"v":{"nested":true}' });
    const fine = outboxEvent({ id: 'm3', time: '2025-01-03T00:00:00Z', rawExtra: ',"v":{"nested":true}' });
    const verdicts = await s.send([first, clash, fine], signal);
    expect(kinds(verdicts)).toEqual(['delivered', 'rejected', 'delivered']);
    expect((verdicts[1] as { reason: string }).reason).toMatch(
      /elasticsearch sink "es": item status 400 for event m2: document_parsing_exception: .*raw\.v/,
    );
    expect(
      server
        .docs()
        .map((d) => `${d.index}/${d.id}`)
        .sort(),
    ).toEqual(['audit-2025.01.02/m1', 'audit-2025.01.03/m3']);
  });

  it('holds events instead of dead-lettering them when the data stream has no template', async () => {
    const { log, lines } = memoryLogger();
    const verdicts = await sink({}, log).send([outboxEvent({ id: 'x' })], signal);
    expect(verdicts[0]).toMatchObject({
      kind: 'retry',
      reason: expect.stringContaining('index_not_found_exception'),
    });
    expect(server.docs()).toHaveLength(0);
    expect(JSON.stringify(lines()) + JSON.stringify(verdicts)).not.toContain(API_KEY);
  });

  it('works with OpenSearch: parameters it does not know are dropped after its first answer', async () => {
    await server.stop();
    await startServer({ flavor: 'opensearch' });
    const s = sink({ manageTemplate: true });
    expect(kinds(await s.send([outboxEvent({ id: 'os1' })], signal))).toEqual(['delivered']);
    expect(kinds(await s.send([outboxEvent({ id: 'os2' })], signal))).toEqual(['delivered']);
    const bulks = server.requests.filter((r) => r.path === '/_bulk');
    expect(bulks.map((r) => r.status)).toEqual([400, 200, 200]);
    expect(bulks[2]?.query).not.toContain('include_source_on_error');
    expect(server.docs()).toHaveLength(2);
  });

  it('splits a batch the cluster finds too large (413), and dead-letters one event too large alone', async () => {
    await server.stop();
    await startServer({ maxContentLength: 2_500 });
    const events = Array.from({ length: 6 }, (_, i) => outboxEvent({ id: `s${i}` }));
    const huge = outboxEvent({ id: 'huge', rawExtra: `,"blob":"${'z'.repeat(5_000)}"` });
    const verdicts = await sink({ manageTemplate: true, compression: 'none' }).send(
      [...events, huge],
      signal,
    );
    expect(kinds(verdicts)).toEqual([...events.map(() => 'delivered'), 'rejected']);
    expect(server.docs()).toHaveLength(6);
  });

  it('retries everything when the cluster is down or the credentials are wrong, never dead-letters', async () => {
    const s = sink({ manageTemplate: true });
    await s.send([outboxEvent({ id: 'warm' })], signal);
    server.setDown(true);
    expect((await s.send([outboxEvent({ id: 'down' })], signal))[0]).toMatchObject({
      kind: 'retry',
      reason: expect.stringContaining('HTTP 503'),
    });
    server.setDown(false);
    await server.stop();
    await startServer({ authorization: 'ApiKey other' });
    const { log, lines } = memoryLogger();
    const verdicts = await sink({ manageTemplate: true }, log)
      .send([outboxEvent({ id: 'unauth' })], signal)
      .catch((e: Error) => e);
    // The template install itself meets the 401: the whole send fails and is retried.
    expect(String(verdicts)).toContain('HTTP 401');
    expect(String(verdicts) + JSON.stringify(lines())).not.toContain(API_KEY);
  });
});
