import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { auditLogRecord } from '../../src/simulator/stackit/audit-records.ts';
import { RouterPusher } from '../../src/simulator/stackit/router-pusher.ts';
import { waitFor } from '../support/daemon.ts';
import { EsTestServer } from '../support/es-server.ts';
import { type Scenario, startScenario } from '../support/scenario.ts';

let scenario: Scenario | undefined;
let es: EsTestServer | undefined;
afterEach(async () => {
  await scenario?.close();
  scenario = undefined;
  await es?.stop();
  es = undefined;
});

const TOKEN = 'e2e-router-token';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function sinkIds(path: string): Promise<string[]> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => (JSON.parse(line) as { id: string }).id);
}

async function listening(port: number): Promise<boolean> {
  const response = await fetch(`http://127.0.0.1:${port}/v1/logs`, { method: 'GET' }).catch(() => undefined);
  return response?.status === 405;
}

describe('STACKIT Telemetry Router push, end to end', () => {
  it('every record the router pushes lands in the sink exactly once, through kill -9 and a Redis restart', async () => {
    scenario = await startScenario({ projects: 2, eventsPerMinute: 400, historyMs: 2 * 60_000 });
    const s = scenario;
    s.sim.stopTraffic();
    const truth = s.truth();
    expect(truth.length).toBeGreaterThan(300);
    const port = await freePort();
    const sinkPath = join(s.dir, 'events.ndjson');
    // Push only: the v2 provider stays defined but polls nothing, so every event must come by push.
    const config = await s.config({
      scopesText: '',
      providerExtra: `  - name: router
    type: stackit-telemetry
    listen: { host: 127.0.0.1, port: ${port} }
    auth: { bearerToken: "\${ROUTER_TOKEN}" }
    allowPlainHttp: true`,
    });
    const env = { ROUTER_TOKEN: TOKEN };
    const first = s.daemon(config, env);
    await waitFor('the receiver to listen', () => listening(port), 30_000);

    const pusher = new RouterPusher({
      target: { uri: `http://127.0.0.1:${port}`, bearerToken: TOKEN },
      batchSize: 40,
      redeliverRate: 0.2,
      shuffle: true,
      seed: 7,
      initialBackoffMs: 100,
      maxBackoffMs: 1_000,
      maxElapsedMs: 180_000,
    });
    const pushing = pusher.push(truth.map(auditLogRecord));

    // Kill the daemon once part of the push is in, then start it again on the same port.
    await waitFor('a first part in the sink', async () => (await sinkIds(sinkPath)).length >= 40, 60_000);
    first.kill('SIGKILL');
    await first.exited;
    const second = s.daemon(config, env);
    await waitFor('the restarted receiver', () => listening(port), 30_000);
    // Redis dies under it (SIGKILL: the last second of AOF may be lost) and comes back.
    await s.redis.server.kill();
    await s.redis.server.restart();

    const report = await pushing;
    console.log(
      `push e2e: ${truth.length} events, ${report.batches} batches, ${report.attempts} attempts, statuses ${JSON.stringify(report.statuses)}, redelivered ${report.redelivered}`,
    );
    expect(report.dropped).toEqual([]);
    expect(new Set(report.acknowledged)).toEqual(new Set(truth.map((e) => e.id)));

    const expected = new Set(truth.map((e) => e.id));
    await waitFor(
      'every event in the sink',
      async () => new Set(await sinkIds(sinkPath)).size >= expected.size,
      60_000,
    );
    const ids = await sinkIds(sinkPath);
    const counts = new Map<string, number>();
    for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
    expect([...expected].filter((id) => !counts.has(id))).toEqual([]);
    expect([...counts].filter(([, n]) => n > 1)).toEqual([]);
    expect(ids.filter((id) => !expected.has(id))).toEqual([]);
    second.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  }, 240_000);

  it('two replicas behind one router, one killed -9 mid-push: an idempotent sink holds every record once', async () => {
    es = new EsTestServer();
    await es.start();
    scenario = await startScenario({ projects: 3, eventsPerMinute: 300, historyMs: 2 * 60_000 });
    const s = scenario;
    s.sim.stopTraffic();
    const truth = s.truth();
    const [portA, portB] = [await freePort(), await freePort()];
    const config = (port: number) =>
      s.config({
        scopesText: '',
        sinkPath: join(s.dir, 'events-{instance}.ndjson'),
        extraSinks: `  - name: es
    type: elasticsearch
    url: ${es?.url}
    manageTemplate: true
    batch: { maxEvents: 300, linger: 200ms }`,
        providerExtra: `  - name: router
    type: stackit-telemetry
    listen: { host: 127.0.0.1, port: ${port} }
    auth: { bearerToken: "\${ROUTER_TOKEN}" }
    allowPlainHttp: true`,
      });
    const [configA, configB] = [await config(portA), await config(portB)];
    const env = { ROUTER_TOKEN: TOKEN };
    const a = s.daemon(configA, env);
    const b = s.daemon(configB, env);
    await waitFor(
      'both receivers to listen',
      async () => (await listening(portA)) && (await listening(portB)),
      30_000,
    );

    const records = truth.map(auditLogRecord);
    const pusher = (port: number, seed: number) =>
      new RouterPusher({
        target: { uri: `http://127.0.0.1:${port}`, bearerToken: TOKEN },
        batchSize: 30,
        redeliverRate: 0.2,
        shuffle: true,
        seed,
        initialBackoffMs: 100,
        maxBackoffMs: 1_000,
        maxElapsedMs: 180_000,
      });
    // The router sends half to each replica, and everything once more to B, as a redelivery through the
    // Service could land on either.
    const half = Math.floor(records.length / 2);
    const pushes = [
      pusher(portA, 1).push(records.slice(0, half)),
      pusher(portB, 2).push(records.slice(half)),
      pusher(portB, 3).push(records),
    ];
    await waitFor('a first part in Elasticsearch', () => (es as EsTestServer).docs().length >= 60, 60_000);
    a.kill('SIGKILL');
    await a.exited;
    const again = s.daemon(configA, env);
    await waitFor('the restarted replica', () => listening(portA), 30_000);

    const reports = await Promise.all(pushes);
    for (const report of reports) expect(report.dropped).toEqual([]);
    const expected = new Set(truth.map((e) => e.id));
    await waitFor(
      'every event in Elasticsearch',
      () => (es as EsTestServer).docs().length >= expected.size,
      60_000,
    );
    const ids = es.docs().map((d) => d.id);
    expect(ids.length).toBe(expected.size);
    expect(new Set(ids)).toEqual(expected);
    for (const d of [b, again]) d.kill('SIGTERM');
    expect(await b.exited).toBe(0);
    expect(await again.exited).toBe(0);
  }, 240_000);
});
