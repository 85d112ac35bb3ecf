import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfigOrThrow } from '../../src/config/load.ts';
import type { ShipperConfig } from '../../src/config/types.ts';
import { Metrics } from '../../src/observability/metrics.ts';
import { DiscoveryService } from '../../src/pipeline/discovery.ts';
import { ScopeCatalog } from '../../src/pipeline/discovery-catalog.ts';
import { DiscoveryStore } from '../../src/pipeline/discovery-store.ts';
import { RedisKeys } from '../../src/pipeline/keys.ts';
import { LeaderLock } from '../../src/pipeline/leader.ts';
import { type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { sourceModules } from '../../src/sources/registry.ts';
import type { Source } from '../../src/sources/source.ts';
import { memoryLogger } from '../support/logger.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

let redis: TestRedis;
let sim: Simulator;
const keys = new RedisKeys('{test}');
const MIN = 60_000;
const DAY = 86_400_000;

beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis.stop();
});
beforeEach(async () => {
  await redis.client.flushall();
  await sim?.close();
  sim = await startSimulator({ seed: 21 });
});

function config(
  orgId: string,
  discover = '{ interval: 10m, gracePeriod: 30m, forgetAfter: 1d }',
): ShipperConfig {
  return loadConfigOrThrow(
    {
      origin: 'test.yaml',
      text: `
providers:
  - name: sim
    type: stackit
    interval: 45s
    auditLogUrl: \${SIM_URL}
    resourceManagerUrl: \${SIM_URL}
    allowInsecureHttp: true
    auth: { token: "\${SIM_TOKEN}" }
    retry: { attempts: 2, initialBackoff: 10ms, maxBackoff: 10ms }
    lookback: 3h
scopes:
  - provider: sim
    organization: ${orgId}
    sinks: [archive]
    discover: ${discover}
sinks:
  - { name: archive, type: stdout }
  - { name: other, type: stdout }
`,
    },
    { env: { SIM_URL: sim.url, SIM_TOKEN: sim.token } },
  ).config;
}

function setup(orgId: string, holder = 'leader-1', leaderTtlMs = 60_000) {
  const cfg = config(orgId);
  const { log, lines } = memoryLogger();
  const sources = new Map<string, Source>();
  for (const provider of cfg.providers) {
    sources.set(
      provider.name,
      (sourceModules.get(provider.type) as NonNullable<ReturnType<typeof sourceModules.get>>).create(
        provider,
        { log, instanceId: holder, onRequest: () => {} },
      ),
    );
  }
  const store = new DiscoveryStore(redis.client, keys);
  const catalog = new ScopeCatalog(cfg.scopes, sources, store);
  const metrics = new Metrics();
  let clockMs = Date.UTC(2025, 5, 1);
  let changes = 0;
  const service = new DiscoveryService({
    catalog,
    store,
    sources,
    leader: new LeaderLock(redis.client, keys.leader(), holder, leaderTtlMs),
    leaderKey: keys.leader(),
    holder,
    keys,
    metrics,
    log,
    onChange: () => changes++,
    minRecheckGapMs: 0,
    now: () => clockMs,
  });
  return {
    cfg,
    catalog,
    store,
    metrics,
    lines,
    service,
    advance: (ms: number) => {
      clockMs += ms;
    },
    changes: () => changes,
    /** What the scheduler would schedule, as kind:id. */
    polled: async () => (await catalog.all()).map((s) => `${s.ref.kind}:${s.ref.id}`).sort(),
  };
}

async function metric(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number> {
  const found = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const value = found?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return Number(value?.value ?? 0);
}

describe('discovery', () => {
  it('publishes what it finds; every replica resolves it with the root’s settings', async () => {
    const rm = sim.resourceManager;
    const org = rm.addOrganization();
    const folder = rm.addFolder(org.id);
    const p1 = rm.addProject(folder.id);
    const p2 = rm.addProject(org.id);
    const d = setup(org.id);
    await d.service.tick();
    expect(await d.polled()).toEqual(
      [`organization:${org.id}`, `folder:${folder.id}`, `project:${p1.id}`, `project:${p2.id}`].sort(),
    );
    expect(d.changes()).toBe(1);

    // Another replica, which never walked anything, resolves a discovered scope from Redis.
    const replica = setup(org.id, 'replica-2');
    const spec = await replica.catalog.resolve(`stackit:project:${p1.id}`);
    expect(spec).toMatchObject({
      key: `stackit:project:${p1.id}`,
      provider: 'sim',
      providerType: 'stackit',
      ref: { kind: 'project', id: p1.id },
      intervalMs: 45_000,
      sinks: ['archive'],
      discoveredBy: `stackit:organization:${org.id}`,
      settings: { kind: 'project', id: p1.id },
    });
    expect((spec?.settings as { discover?: unknown } | undefined)?.discover).toBeUndefined();
    expect(spec).toBeDefined();
    expect(
      await replica.catalog.resolve('stackit:project:00000000-0000-4000-8000-000000000000'),
    ).toBeUndefined();
  });

  it('adds new scopes at the next walk; a vanished one stays polled for the grace period, then its state is kept', async () => {
    const rm = sim.resourceManager;
    const org = rm.addOrganization();
    const p1 = rm.addProject(org.id);
    const p2 = rm.addProject(org.id);
    const d = setup(org.id);
    await d.service.tick();
    const p3 = rm.addProject(org.id);
    d.advance(5 * MIN);
    await d.service.tick(); // not due yet
    expect(await d.polled()).not.toContain(`project:${p3.id}`);
    d.advance(5 * MIN);
    await d.service.tick();
    expect(await d.polled()).toContain(`project:${p3.id}`);

    // p2 is deleted; its checkpoint must survive.
    await redis.client.hset(keys.checkpoint(`stackit:project:${p2.id}`), 'state', '{"v":1,"hwm":1}');
    rm.remove(p2.id);
    d.advance(10 * MIN);
    await d.service.tick();
    expect(await d.polled()).toContain(`project:${p2.id}`); // missing, still polled
    expect((await d.store.entry(`stackit:project:${p2.id}`))?.missingSinceMs).toBeDefined();
    d.advance(31 * MIN);
    const changesBefore = d.changes();
    await d.service.tick();
    expect(await d.polled()).not.toContain(`project:${p2.id}`); // gone
    expect(await d.catalog.resolve(`stackit:project:${p2.id}`)).toBeUndefined();
    expect(d.changes()).toBe(changesBefore + 1);
    expect(await redis.client.hget(keys.checkpoint(`stackit:project:${p2.id}`), 'state')).toBe(
      '{"v":1,"hwm":1}',
    );
    expect(await metric(d.metrics, 'auditlog_discovered_scopes', { state: 'gone' })).toBe(1);
    expect(d.lines().some((l) => String(l.msg).includes('it is no longer polled'))).toBe(true);

    // It comes back: polled again, from the checkpoint it kept.
    rm.addProject(org.id, { id: p2.id });
    d.advance(10 * MIN);
    await d.service.tick();
    expect(await d.polled()).toContain(`project:${p2.id}`);
    expect(await redis.client.hget(keys.checkpoint(`stackit:project:${p2.id}`), 'state')).toBe(
      '{"v":1,"hwm":1}',
    );

    // Gone again and past forgetAfter: the entry and its state are deleted, and said so.
    rm.remove(p2.id);
    d.advance(10 * MIN);
    await d.service.tick(); // missing
    d.advance(31 * MIN);
    await d.service.tick(); // gone
    d.advance(DAY);
    await d.service.tick(); // forgotten
    expect(await d.store.entry(`stackit:project:${p2.id}`)).toBeUndefined();
    expect(await redis.client.exists(keys.checkpoint(`stackit:project:${p2.id}`))).toBe(0);
    expect(d.lines().some((l) => String(l.msg).includes('its checkpoint and dedupe set are deleted'))).toBe(
      true,
    );
    expect(await d.polled()).toContain(`project:${p1.id}`);
  });

  it('changes nothing when a walk fails, and walks early when a poll asks for it', async () => {
    const rm = sim.resourceManager;
    const org = rm.addOrganization();
    const p1 = rm.addProject(org.id);
    const d = setup(org.id);
    await d.service.tick();
    rm.remove(p1.id);
    sim.resourceManagerFaults.set({ serverErrorRate: 1 });
    d.advance(10 * MIN);
    await d.service.tick();
    // The walk failed: p1 is not declared missing on a partial answer.
    expect((await d.store.entry(`stackit:project:${p1.id}`))?.missingSinceMs).toBeUndefined();
    expect(await metric(d.metrics, 'auditlog_discovery_runs_total', { outcome: 'failed' })).toBe(1);
    expect((await d.store.roots()).get(`stackit:organization:${org.id}`)?.lastError).toMatch(/HTTP 50\d/);
    sim.resourceManagerFaults.clear();

    // A 404 from p1's audit log asks for an early walk: no need to wait for the interval.
    d.advance(MIN);
    await d.service.tick();
    expect((await d.store.entry(`stackit:project:${p1.id}`))?.missingSinceMs).toBeUndefined();
    await d.store.requestRecheck(`stackit:organization:${org.id}`, Date.UTC(2025, 5, 2));
    await d.service.tick();
    expect((await d.store.entry(`stackit:project:${p1.id}`))?.missingSinceMs).toBeDefined();
    expect((await d.store.rechecks()).size).toBe(0);
  });

  it('writes only while leading, and refuses a result computed from a stale version', async () => {
    const rm = sim.resourceManager;
    const org = rm.addOrganization();
    rm.addProject(org.id);
    await redis.client.set(keys.leader(), 'someone-else', 'PX', 60_000);
    const d = setup(org.id);
    sim.resetObservations();
    await d.service.tick();
    expect(sim.requestLog).toHaveLength(0);
    expect(await d.store.entries()).toEqual(new Map());
    await redis.client.del(keys.leader());
    await d.service.tick();
    expect((await d.store.entries()).size).toBe(1);
    const root = `stackit:organization:${org.id}`;
    const version = (await d.store.roots()).get(root)?.version as number;
    const stale = {
      root,
      expectedVersion: version - 1,
      record: {},
      upserts: new Map(),
      forget: [],
      stateKeys: [],
    };
    expect(await d.store.apply('leader-1', keys.leader(), stale)).toBe('conflict');
    expect(await d.store.apply('intruder', keys.leader(), { ...stale, expectedVersion: version })).toBe(
      'not-leader',
    );
  });

  it('carries on under a new leader when the old one dies, from what the old one published', async () => {
    const rm = sim.resourceManager;
    const org = rm.addOrganization();
    const p1 = rm.addProject(org.id);
    const a = setup(org.id, 'replica-a', 1_000);
    const b = setup(org.id, 'replica-b', 1_000);
    await a.service.tick();
    await b.service.tick(); // not leader: nothing
    expect(await b.polled()).toContain(`project:${p1.id}`);
    // replica-a dies without resigning; its leadership lapses and replica-b takes over.
    const p2 = rm.addProject(org.id);
    rm.remove(p1.id);
    await new Promise((r) => setTimeout(r, 1_100));
    sim.resetObservations();
    await b.service.tick(); // leads now, but the walk a made is recent: not due yet
    expect(sim.requestLog).toHaveLength(0);
    b.advance(10 * 60_000);
    await b.service.tick();
    expect(await b.polled()).toContain(`project:${p2.id}`);
    expect((await b.store.entry(`stackit:project:${p1.id}`))?.missingSinceMs).toBeDefined();
    // The old leader, back from a pause, cannot overwrite the newer answer.
    a.advance(10 * 60_000);
    await a.service.tick();
    expect((await a.store.entry(`stackit:project:${p1.id}`))?.missingSinceMs).toBeDefined();
    expect(await redis.client.get(keys.leader())).toBe('replica-b');
  });
});
