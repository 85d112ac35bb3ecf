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
import { makeScopeIds, type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { stackitProviderSchema, stackitScopeSchema } from '../../src/sources/stackit/config.ts';
import { StackitSource } from '../../src/sources/stackit/source.ts';
import { memoryLogger } from '../support/logger.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

let redis: TestRedis;
let sim: Simulator;
const keys = new RedisKeys('{test}');
const [PROJECT] = makeScopeIds(51, 1) as [string];

beforeAll(async () => {
  redis = await startTestRedis();
  sim = await startSimulator({ seed: 51 });
});
afterAll(async () => {
  await sim.close();
  await redis.stop();
});
beforeEach(async () => {
  await redis.client.flushall();
  sim.stackit.removeScope({ kind: 'project', id: PROJECT });
  sim.stackit.addScope({ kind: 'project', id: PROJECT, eventsPerMinute: 30 });
});

describe('a scope that answers 404', () => {
  it('is recorded, counted, re-checked slowly, and resumes from its checkpoint when it answers again', async () => {
    const settings = withEnv({ SIM_TOKEN: sim.token }, () =>
      stackitProviderSchema.parse({
        auditLogUrl: sim.url,
        auth: { token: '${SIM_TOKEN}' },
        lookback: '10m',
        settleLag: '1s',
        retry: { attempts: 1, initialBackoff: '10ms', maxBackoff: '10ms' },
      }),
    );
    const { log, lines } = memoryLogger();
    const metrics = new Metrics();
    const state = new ScopeStateStore(redis.client, keys);
    let clock = Date.now();
    const told: string[] = [];
    const poller = new Poller({
      sources: new Map([
        [
          'sim',
          new StackitSource(
            { name: 'sim', type: 'stackit', settings },
            { log, instanceId: 't', onRequest: () => {} },
          ),
        ],
      ]),
      leases: new LeaseManager(redis.client, keys),
      committer: new Committer(redis.client, keys),
      outbox: new OutboxMonitor(redis.client, keys),
      state,
      metrics,
      log,
      leaseTtlMs: 5_000,
      outboxMaxLength: 100_000,
      notFoundRecheckMs: 15 * 60_000,
      onScopeNotFound: async (scope) => void told.push(scope.key),
      now: () => clock,
    });
    const scope: ScopeSpec = {
      key: `stackit:project:${PROJECT}`,
      provider: 'sim',
      providerType: 'stackit',
      ref: { kind: 'project', id: PROJECT },
      intervalMs: 1_000,
      sinks: ['archive'],
      settings: stackitScopeSchema.parse({ project: PROJECT }),
      discoveredBy: 'stackit:organization:x',
    };
    const poll = () => poller.poll(scope, new AbortController().signal);

    expect((await poll()).outcome).toBe('completed');
    const before = await state.checkpoint(scope.key);

    sim.stackit.removeScope({ kind: 'project', id: PROJECT });
    const failed = await poll();
    expect(failed).toMatchObject({ outcome: 'failed', error: { reason: 'scope_not_found', status: 404 } });
    expect(told).toEqual([scope.key]);
    expect((await state.status(scope.key)).notFoundSinceMs).toBe(clock);
    expect(
      lines().some((l) => String(l.msg).includes('answered 404: deleted, or out of the credential')),
    ).toBe(true);

    // Within the re-check interval the provider is not asked at all.
    sim.resetObservations();
    clock += 60_000;
    expect((await poll()).outcome).toBe('skipped');
    expect(sim.requestLog).toHaveLength(0);
    clock += 15 * 60_000;
    expect((await poll()).outcome).toBe('failed');
    expect(sim.requestLog).toHaveLength(1);
    expect(told).toHaveLength(1); // told once per run of 404s
    const counted = (await metrics.registry.getMetricsAsJSON()).find(
      (m) => m.name === 'auditlog_scope_not_found_total',
    );
    expect(counted?.values[0]?.value).toBe(2);
    // The checkpoint did not move past what was committed.
    expect((await state.checkpoint(scope.key))?.checkpoint).toEqual(before?.checkpoint);

    sim.stackit.addScope({ kind: 'project', id: PROJECT, eventsPerMinute: 30 });
    clock += 16 * 60_000;
    expect((await poll()).outcome).toBe('completed');
    expect((await state.status(scope.key)).notFoundSinceMs).toBeUndefined();
    expect((await poll()).outcome).toBe('completed');
  });
});
