import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withEnv } from '../../src/config/fields.ts';
import type { ScopeSpec } from '../../src/config/types.ts';
import { Metrics } from '../../src/observability/metrics.ts';
import { Committer } from '../../src/pipeline/commit.ts';
import { RedisKeys } from '../../src/pipeline/keys.ts';
import { LeaseManager } from '../../src/pipeline/lease.ts';
import { OutboxMonitor } from '../../src/pipeline/outbox.ts';
import { Poller } from '../../src/pipeline/poller.ts';
import { ScopeStateStore } from '../../src/pipeline/scope-state.ts';
import { makeScopeIds, type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { stackitProviderSchema, stackitScopeSchema } from '../../src/sources/stackit/config.ts';
import { StackitSource } from '../../src/sources/stackit/source.ts';
import { silentLogger } from '../support/logger.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

const keys = new RedisKeys('{late}');
const [PROJECT] = makeScopeIds(11, 1) as [string];
const SCOPE = `stackit:project:${PROJECT}`;
const T0 = Date.parse('2026-12-02T10:00:00Z');
let clock = T0;
let redis: TestRedis;
let sim: Simulator;

beforeAll(async () => {
  redis = await startTestRedis();
  // A third of the events become visible up to 40 s after their time; the clock is the test's.
  sim = await startSimulator({
    seed: 11,
    now: () => clock,
    stackit: {
      scopes: [{ kind: 'project', id: PROJECT, eventsPerMinute: 240 }],
      delay: { minMs: 0, maxMs: 0, lateFraction: 0.3, lateMaxMs: 40_000 },
      trafficStartMs: T0 - 20 * 60_000,
      trafficEndMs: T0 + 60_000,
    },
  });
});
afterAll(async () => {
  await sim.close();
  await redis.stop();
});

function lateCount(metrics: Metrics): Promise<number> {
  return metrics.registry.getMetricsAsJSON().then((all) => {
    const late = all.find((m) => m.name === 'auditlog_late_arrival_seconds');
    const count = late?.values.find(
      (v) => (v as { metricName?: string }).metricName === 'auditlog_late_arrival_seconds_count',
    );
    return count?.value ?? 0;
  });
}

describe('auditlog_late_arrival_seconds', () => {
  it('counts only events that became visible after a poll had read past their time', async () => {
    const settings = withEnv({ SIM_TOKEN: sim.token }, () =>
      stackitProviderSchema.parse({
        auditLogUrl: sim.url,
        auth: { token: '${SIM_TOKEN}' },
        lookback: '15m',
        overlap: '2m',
        settleLag: '1s',
        retry: { attempts: 1, initialBackoff: '10ms', maxBackoff: '10ms' },
      }),
    );
    const log = silentLogger;
    const metrics = new Metrics();
    const now = () => clock;
    const source = new StackitSource(
      { name: 'sim', type: 'stackit', settings },
      { log, instanceId: 't', onRequest: () => {} },
    );
    const scope: ScopeSpec = {
      key: SCOPE,
      provider: 'sim',
      providerType: 'stackit',
      ref: { kind: 'project', id: PROJECT },
      intervalMs: 1_000,
      sinks: ['archive'],
      settings: stackitScopeSchema.parse({ project: PROJECT }),
    };
    const state = new ScopeStateStore(redis.client, keys);
    const poller = new Poller({
      sources: new Map([['sim', source]]),
      leases: new LeaseManager(redis.client, keys),
      committer: new Committer(redis.client, keys),
      outbox: new OutboxMonitor(redis.client, keys),
      state,
      metrics,
      log,
      now,
      leaseTtlMs: 5_000,
      outboxMaxLength: 100_000,
    });
    const outbox = async () =>
      (await redis.client.xrange(keys.outbox('archive'), '-', '+')).map(([, f]) => ({
        id: f[1] as string,
        timeMs: Number(f[f.indexOf('t') + 1]),
      }));

    // The first poll reads the 15-minute lookback: hundreds of events, none of them late.
    await poller.poll(scope, new AbortController().signal);
    const first = await outbox();
    expect(first.length).toBeGreaterThan(500);
    expect(await lateCount(metrics)).toBe(0);
    const covered = (await state.checkpoint(SCOPE))?.checkpoint.watermarkMs as number;
    expect(covered).toBeGreaterThan(T0 - 60_000);

    // 50 s later: new events after the covered mark are on time; those before it that showed up only
    // now are the late arrivals, and only they are counted.
    clock = T0 + 50_000;
    await poller.poll(scope, new AbortController().signal);
    const known = new Set(first.map((e) => e.id));
    const added = (await outbox()).filter((e) => !known.has(e.id));
    const late = added.filter((e) => e.timeMs < covered);
    expect(added.length).toBeGreaterThan(late.length);
    expect(late.length).toBeGreaterThan(0);
    expect(await lateCount(metrics)).toBe(late.length);
    await source.close();
  });
});
