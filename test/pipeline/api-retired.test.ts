import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { withEnv } from '../../src/config/fields.ts';
import type { ScopeSpec } from '../../src/config/types.ts';
import { Metrics } from '../../src/observability/metrics.ts';
import { Committer } from '../../src/pipeline/commit.ts';
import { RedisKeys } from '../../src/pipeline/keys.ts';
import { LeaseManager } from '../../src/pipeline/lease.ts';
import { OutboxMonitor } from '../../src/pipeline/outbox.ts';
import { Poller } from '../../src/pipeline/poller.ts';
import { ScopeStateStore } from '../../src/pipeline/scope-state.ts';
import { stackitProviderSchema } from '../../src/sources/stackit/config.ts';
import { StackitSource } from '../../src/sources/stackit/source.ts';
import { memoryLogger } from '../support/logger.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

let redis: TestRedis;
let server: Server;
let url: string;
/** What the retired API answers: a 410, or a gateway's 404 page instead of the API's JSON error. */
let answer: { status: number; type: string; body: string } = {
  status: 410,
  type: 'application/json',
  body: '{}',
};
let requests = 0;
const keys = new RedisKeys('{retired}');
const PROJECT = '0b1f3c2e-1234-4abc-8def-0123456789ab';

beforeAll(async () => {
  redis = await startTestRedis();
  server = createServer((req, res) => {
    requests++;
    req.resume();
    res.writeHead(answer.status, { 'content-type': answer.type }).end(answer.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await redis.stop();
});
beforeEach(async () => {
  await redis.client.flushall();
  requests = 0;
});

function poller(metrics: Metrics, clock: () => number) {
  const settings = withEnv({ TOKEN: 't' }, () =>
    stackitProviderSchema.parse({
      auditLogUrl: url,
      auth: { token: '${TOKEN}' },
      retry: { attempts: 1, initialBackoff: '10ms', maxBackoff: '10ms' },
    }),
  );
  const { log, lines } = memoryLogger();
  const source = new StackitSource(
    { name: 'v2', type: 'stackit', settings },
    { log, instanceId: 't', onRequest: () => {} },
  );
  return {
    lines,
    poller: new Poller({
      sources: new Map([['v2', source]]),
      leases: new LeaseManager(redis.client, keys),
      committer: new Committer(redis.client, keys),
      outbox: new OutboxMonitor(redis.client, keys),
      state: new ScopeStateStore(redis.client, keys),
      metrics,
      log,
      leaseTtlMs: 5_000,
      outboxMaxLength: 100_000,
      notFoundRecheckMs: 15 * 60_000,
      now: clock,
    }),
  };
}

const scope: ScopeSpec = {
  key: `stackit:project:${PROJECT}`,
  provider: 'v2',
  providerType: 'stackit',
  ref: { kind: 'project', id: PROJECT },
  intervalMs: 1_000,
  sinks: ['archive'],
  settings: { kind: 'project', id: PROJECT },
};

describe('Audit Log API v2 retired', () => {
  for (const retired of [
    { status: 410, type: 'application/json', body: '{"message":"gone"}' },
    { status: 404, type: 'text/html', body: '<html><body>404 page not found</body></html>' },
  ]) {
    it(`a ${retired.status} ${retired.type} is a clear state, counted and alerted on, re-checked slowly`, async () => {
      answer = retired;
      const metrics = new Metrics();
      let now = Date.now();
      const { poller: p, lines } = poller(metrics, () => now);
      const first = await p.poll(scope, new AbortController().signal);
      expect(first).toMatchObject({ outcome: 'failed', error: { reason: 'api_retired' } });
      expect((await metrics.apiRetired.get()).values[0]?.value).toBe(1);
      expect(
        lines().some((l) => /audit-log API answers that it is gone.*Telemetry Router/.test(String(l.msg))),
      ).toBe(true);
      const asked = requests;
      now += 60_000;
      expect(await p.poll(scope, new AbortController().signal)).toEqual({ outcome: 'skipped' });
      expect(requests).toBe(asked);
      const status = await new ScopeStateStore(redis.client, keys).status(scope.key);
      expect(status.lastPoll?.error?.reason).toBe('api_retired');
    });
  }

  it('keeps a 404 with the API’s own JSON error a missing scope, not a retired API', async () => {
    answer = { status: 404, type: 'application/json', body: `{"message":"${PROJECT} not found."}` };
    const { poller: p } = poller(new Metrics(), () => Date.now());
    expect(await p.poll(scope, new AbortController().signal)).toMatchObject({
      error: { reason: 'scope_not_found' },
    });
  });
});
