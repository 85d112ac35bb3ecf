import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../support/daemon.ts';
import { EsTestServer } from '../support/es-server.ts';
import { LokiTestServer } from '../support/loki-server.ts';
import { readSinkFiles, recordsFromLines, summary } from '../support/oracle.ts';
import { S3_ACCESS_KEY, S3_SECRET_KEY, S3TestServer } from '../support/s3-server.ts';
import { type Scenario, startScenario } from '../support/scenario.ts';

let scenario: Scenario | undefined;
const servers: Array<{ stop(): Promise<void> }> = [];
afterEach(async () => {
  await scenario?.close();
  scenario = undefined;
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

const ES_KEY = 'ZTJlOmVzLWtleS1zZWNyZXQ=';

describe('end to end: simulator → daemon → file, Loki, Elasticsearch and S3 at once', () => {
  it('keeps the others flowing while Loki is down, then Loki catches up: nothing lost, nothing doubled', async () => {
    const loki = new LokiTestServer();
    const es = new EsTestServer({ authorization: `ApiKey ${ES_KEY}` });
    const s3 = new S3TestServer();
    await Promise.all([loki.start(), es.start(), s3.start()]);
    servers.push(loki, es, { stop: () => s3.remove() });
    loki.setDown(true);

    scenario = await startScenario({ projects: 3, eventsPerMinute: 120, historyMs: 4 * 60_000 });
    const s = scenario;
    const config = await s.config({
      extraSinks: `  - name: loki
    type: loki
    url: ${loki.url}
    tenant: e2e
    batch: { maxEvents: 300, linger: 200ms }
  - name: es
    type: elasticsearch
    url: ${es.url}
    allowInsecureHttp: true
    auth: { apiKey: "\${ES_KEY}" }
    manageTemplate: true
    batch: { maxEvents: 300, linger: 200ms }
  - name: s3
    type: s3
    bucket: ${s3.bucket}
    prefix: e2e/
    endpoint: ${s3.url}
    allowInsecureHttp: true
    auth: { accessKeyId: "\${S3_KEY}", secretAccessKey: "\${S3_SECRET}" }
    batch: { maxEvents: 500, linger: 1s }
`,
    });
    const daemon = s.daemon(config, { ES_KEY, S3_KEY: S3_ACCESS_KEY, S3_SECRET: S3_SECRET_KEY });

    const esRecords = async () => recordsFromLines(es.docs().map((d) => d.source));
    const s3Records = async () => recordsFromLines((await s3.objects('e2e/')).flatMap((o) => o.lines));
    const lokiRecords = async () => recordsFromLines(loki.entries().map((e) => e.line));

    // While Loki is down, Elasticsearch and S3 fill up on their own.
    await waitFor(
      'events in Elasticsearch and S3 while Loki is down',
      async () => es.docs().length > 200 && (await s3Records()).length > 200,
      20_000,
    );
    expect(loki.entries()).toHaveLength(0);
    expect(loki.requests.filter((r) => r.status === 503).length).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 2_000));
    loki.setDown(false);
    s.sim.stopTraffic();

    const verdicts = {
      file: await s.settle(async () => [join(s.dir, 'events.ndjson')], 45_000),
      // The file's settle waited out the late arrivals; every sink gets the same committed events.
      loki: await s.settleRecords(lokiRecords, 45_000, 'Loki', 1_000),
      es: await s.settleRecords(esRecords, 30_000, 'Elasticsearch', 0),
      s3: await s.settleRecords(s3Records, 30_000, 'S3', 0),
    };
    for (const [sink, v] of Object.entries(verdicts)) {
      console.log(`oracle ${sink}: ${summary(v)}`);
      expect(v.expected, sink).toBeGreaterThan(500);
      expect(v.missing, sink).toEqual([]);
      expect(v.duplicated, sink).toEqual([]);
      expect(v.unexpected, sink).toEqual([]);
      expect(v.altered, sink).toEqual([]);
    }
    // Every sink holds the same events as the file.
    const fileIds = (await readSinkFiles([join(s.dir, 'events.ndjson')])).map((r) => r.id).sort();
    expect((await lokiRecords()).map((r) => r.id).sort()).toEqual(fileIds);

    daemon.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    const log = (await daemon.logLines()).map((l) => JSON.stringify(l)).join('\n');
    expect(log).toContain('shutdown complete');
    for (const secret of [ES_KEY, S3_SECRET_KEY, s.sim.token]) {
      expect(log).not.toContain(secret);
    }
    expect(await daemon.strayLines()).toEqual([]);
  }, 300_000);
});
