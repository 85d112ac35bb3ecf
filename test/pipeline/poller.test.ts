import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { withEnv } from '../../src/config/fields.ts';
import type { ScopeSpec } from '../../src/config/types.ts';
import { Metrics } from '../../src/observability/metrics.ts';
import { Committer } from '../../src/pipeline/commit.ts';
import { RedisKeys } from '../../src/pipeline/keys.ts';
import { LeaseManager } from '../../src/pipeline/lease.ts';
import { OutboxMonitor } from '../../src/pipeline/outbox.ts';
import { Poller } from '../../src/pipeline/poller.ts';
import { ScopeStateStore } from '../../src/pipeline/scope-state.ts';
import { MALFORMED_KINDS, makeScopeIds, type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { stackitProviderSchema, stackitScopeSchema } from '../../src/sources/stackit/config.ts';
import { StackitSource } from '../../src/sources/stackit/source.ts';
import { memoryLogger } from '../support/logger.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

let redis: TestRedis;
let sim: Simulator;
const keys = new RedisKeys('{test}');
const [PROJECT] = makeScopeIds(7, 1) as [string];
const TRAFFIC_START = Date.now() - 10 * 60_000;

beforeAll(async () => {
  redis = await startTestRedis();
  sim = await startSimulator({
    seed: 7,
    stackit: {
      scopes: [{ kind: 'project', id: PROJECT, eventsPerMinute: 60 }],
      delay: { minMs: 0, maxMs: 0, lateFraction: 0, lateMaxMs: 0 },
      trafficStartMs: TRAFFIC_START,
      trafficEndMs: Date.now() - 60_000,
    },
  });
});
afterAll(async () => {
  await sim.close();
  await redis.stop();
});
beforeEach(async () => {
  await redis.client.flushall();
  sim.faults.clear();
});

function setup(overrides: { outboxMaxLength?: number } = {}) {
  const settings = withEnv({ SIM_TOKEN: sim.token }, () =>
    stackitProviderSchema.parse({
      auditLogUrl: sim.url,
      auth: { token: '${SIM_TOKEN}' },
      lookback: '15m',
      overlap: '1m',
      settleLag: '1s',
      retry: { attempts: 1, initialBackoff: '10ms', maxBackoff: '10ms' },
    }),
  );
  const { log, lines } = memoryLogger();
  const metrics = new Metrics();
  const source = new StackitSource(
    { name: 'sim', type: 'stackit', settings },
    { log, instanceId: 't', onRequest: () => {} },
  );
  const scope: ScopeSpec = {
    key: `stackit:project:${PROJECT}`,
    provider: 'sim',
    providerType: 'stackit',
    ref: { kind: 'project', id: PROJECT },
    intervalMs: 1_000,
    sinks: ['archive'],
    settings: stackitScopeSchema.parse({ project: PROJECT }),
  };
  const poller = new Poller({
    sources: new Map([['sim', source]]),
    leases: new LeaseManager(redis.client, keys),
    committer: new Committer(redis.client, keys),
    outbox: new OutboxMonitor(redis.client, keys),
    state: new ScopeStateStore(redis.client, keys),
    metrics,
    log,
    leaseTtlMs: 5_000,
    outboxMaxLength: overrides.outboxMaxLength ?? 100_000,
  });
  const poll = () => poller.poll(scope, new AbortController().signal);
  return { poller, poll, scope, lines, metrics, source };
}

async function outboxIds(): Promise<string[]> {
  const entries = await redis.client.xrange(keys.outbox('archive'), '-', '+');
  return entries.map(([, fields]) => fields[1] as string);
}

function truthIds(): string[] {
  return sim.truth
    .events({ scope: { kind: 'project', id: PROJECT }, fromMs: TRAFFIC_START })
    .map((e) => e.id);
}

async function metricValue(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const value = metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return Number(value?.value ?? 0);
}

describe('Poller against the simulator and real Redis', () => {
  it('commits every event of the lookback once, however often it polls', async () => {
    const { poll } = setup();
    const first = await poll();
    expect(first.outcome).toBe('completed');
    await poll();
    const ids = await outboxIds();
    expect(ids.length).toBeGreaterThan(400);
    expect([...ids].sort()).toEqual([...truthIds()].sort());
  });

  it.each(MALFORMED_KINDS)(
    'fails a poll on a %s page with a named error, then recovers without skipping',
    async (kind) => {
      const { poll, lines, metrics } = setup();
      sim.faults.enqueue({ type: 'malformed', kind });
      const failed = await poll();
      expect(failed.outcome).toBe('failed');
      const reason = failed.outcome === 'failed' ? (failed.error as { reason?: string }).reason : undefined;
      expect(['invalid_json', 'invalid_response']).toContain(reason);
      expect(await metricValue(metrics, 'auditlog_poll_errors_total', { reason: reason as string })).toBe(1);
      const logged = lines().find((l) => l.level === 50 && String(l.msg).startsWith('poll failed'));
      expect(String(logged?.msg)).toContain(`stackit project ${PROJECT}`);
      expect(String(logged?.msg)).toMatch(/page 1/);
      expect(logged?.reason).toBe(reason);

      expect((await poll()).outcome).toBe('completed');
      expect([...(await outboxIds())].sort()).toEqual([...truthIds()].sort());
    },
  );

  it('ships an item the provider keeps sending broken, with anomalies, after three polls', async () => {
    const { poll } = setup();
    sim.faults.enqueue(
      ...Array.from({ length: 3 }, () => ({ type: 'malformed' as const, kind: 'item-wrong-types' as const })),
    );
    expect((await poll()).outcome).toBe('failed');
    expect((await poll()).outcome).toBe('failed');
    expect((await poll()).outcome).toBe('completed');
    const entries = await redis.client.xrange(keys.outbox('archive'), '-', '+');
    const odd = entries.map(([, f]) => JSON.parse(f[9] as string)).filter((e) => e.anomalies);
    expect(odd).toHaveLength(1);
    expect(odd[0].id).toMatch(/^sha256:/);
    expect(odd[0].anomalies[0]).toContain('id: expected a non-empty string');
  });

  it('stops a pagination loop with reason pagination_loop instead of spinning', async () => {
    const { poll } = setup();
    // Page 2 is answered with the very cursor it was asked with.
    sim.faults.enqueue({ type: 'repeat-cursor' }, { type: 'repeat-cursor' });
    const looped = await poll();
    expect(looped.outcome).toBe('failed');
    expect(looped.outcome === 'failed' && (looped.error as { reason?: string }).reason).toBe(
      'pagination_loop',
    );
    expect((await poll()).outcome).toBe('completed');
    expect([...(await outboxIds())].sort()).toEqual([...truthIds()].sort());
  });

  it('pauses when an outbox is full and resumes where it stopped once it drains', async () => {
    const { poll, metrics } = setup({ outboxMaxLength: 150 });
    const paused = await poll();
    expect(paused.outcome).toBe('paused');
    const firstBatch = await redis.client.xlen(keys.outbox('archive'));
    expect(firstBatch).toBeGreaterThanOrEqual(150);
    expect(firstBatch).toBeLessThan(300); // stopped after the page that filled it
    expect((await poll()).outcome).toBe('paused'); // still full: no request, nothing added
    expect(await redis.client.xlen(keys.outbox('archive'))).toBe(firstBatch);
    expect(await metricValue(metrics, 'auditlog_outbox_full_pauses_total', { sink: 'archive' })).toBe(2);

    const drained: string[] = [];
    for (let i = 0; i < 20; i++) {
      const entries = await redis.client.xrange(keys.outbox('archive'), '-', '+');
      drained.push(...entries.map(([, f]) => f[1] as string));
      if (entries.length > 0) await redis.client.xdel(keys.outbox('archive'), ...entries.map(([id]) => id));
      if ((await poll()).outcome === 'completed') break;
    }
    drained.push(...(await outboxIds()));
    expect([...drained].sort()).toEqual([...truthIds()].sort());
  });

  it('skips a scope whose lease another poll holds, and counts the conflict', async () => {
    const { poll, scope, metrics } = setup();
    const held = await new LeaseManager(redis.client, keys).acquire(scope.key, 5_000);
    expect((await poll()).outcome).toBe('skipped');
    expect(await metricValue(metrics, 'auditlog_lease_conflicts_total', {})).toBe(1);
    await held?.release();
    expect((await poll()).outcome).toBe('completed');
  });

  it('stops at a page boundary on shutdown, with what it read so far committed', async () => {
    const { poller, scope } = setup();
    sim.faults.set({ slowRate: 1, slowDelayMs: 100 });
    const shutdown = new AbortController();
    const running = poller.poll(scope, shutdown.signal);
    // Mid-poll, whatever the machine's speed: a first page committed, more to come (each page is slow).
    await vi.waitFor(async () => expect((await outboxIds()).length).toBeGreaterThan(0), {
      timeout: 60_000,
      interval: 10,
    });
    shutdown.abort(new Error('shutdown'));
    const result = await running;
    expect(result.outcome).toBe('interrupted');
    expect(await redis.client.exists(keys.lease(scope.key))).toBe(0);
    sim.faults.clear();
    expect((await poller.poll(scope, new AbortController().signal)).outcome).toBe('completed');
    expect([...(await outboxIds())].sort()).toEqual([...truthIds()].sort());
  });
});
