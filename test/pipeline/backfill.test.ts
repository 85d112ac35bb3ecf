import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { backfill } from '../../src/cli/commands/backfill.ts';
import { loadConfigOrThrow } from '../../src/config/load.ts';
import type { ScopeSpec } from '../../src/config/types.ts';
import { Metrics } from '../../src/observability/metrics.ts';
import {
  BACKFILL_QUEUE,
  BackfillCoordinator,
  type BackfillJobData,
  BackfillWorker,
} from '../../src/pipeline/backfill.ts';
import { BackfillStore, backfillScopeKey } from '../../src/pipeline/backfill-store.ts';
import { Committer } from '../../src/pipeline/commit.ts';
import { ScopeCatalog } from '../../src/pipeline/discovery-catalog.ts';
import { DiscoveryStore } from '../../src/pipeline/discovery-store.ts';
import { RedisKeys } from '../../src/pipeline/keys.ts';
import { LeaderLock } from '../../src/pipeline/leader.ts';
import { LeaseManager } from '../../src/pipeline/lease.ts';
import { OutboxMonitor } from '../../src/pipeline/outbox.ts';
import { Poller } from '../../src/pipeline/poller.ts';
import { ScopeStateStore } from '../../src/pipeline/scope-state.ts';
import { makeScopeIds, type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { sourceModules } from '../../src/sources/registry.ts';
import type { Source } from '../../src/sources/source.ts';
import { memoryLogger } from '../support/logger.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

const DAY = 86_400_000;
let redis: TestRedis;
let sim: Simulator;
const keys = new RedisKeys('{auditlog}');
const [PROJECT] = makeScopeIds(41, 1) as [string];
const SCOPE = `stackit:project:${PROJECT}`;
const TRAFFIC_START = Date.now() - 6 * DAY;

beforeAll(async () => {
  redis = await startTestRedis();
  sim = await startSimulator({
    seed: 41,
    stackit: {
      // Sparse old history: about 3 events an hour, so six days stay small.
      scopes: [{ kind: 'project', id: PROJECT, eventsPerMinute: 0.05 }],
      delay: { minMs: 0, maxMs: 0 },
      trafficStartMs: TRAFFIC_START,
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

const configText = (lookback: string) => `
daemon:
  redis: { url: "${'${REDIS_URL}'}" }
providers:
  - name: sim
    type: stackit
    auditLogUrl: \${SIM_URL}
    allowInsecureHttp: true
    auth: { token: "\${SIM_TOKEN}" }
    lookback: ${lookback}
    overlap: 1m
    settleLag: 1s
    retry: { attempts: 1, initialBackoff: 10ms, maxBackoff: 10ms }
scopes:
  - { provider: sim, project: ${PROJECT} }
sinks:
  - { name: archive, type: stdout }
`;

function setup(lookback = '3d', sliceMs = 60_000, now: () => number = Date.now) {
  const env = { SIM_URL: sim.url, SIM_TOKEN: sim.token, REDIS_URL: redis.url };
  const config = loadConfigOrThrow({ text: configText(lookback), origin: 't.yaml' }, { env }).config;
  const { log, lines } = memoryLogger();
  const sources = new Map<string, Source>();
  for (const provider of config.providers) {
    sources.set(
      provider.name,
      sourceModules.get('stackit')!.create(provider, { log, instanceId: 't', onRequest: () => {} }),
    );
  }
  const store = new BackfillStore(redis.client, keys);
  const state = new ScopeStateStore(redis.client, keys);
  const catalog = new ScopeCatalog(config.scopes, sources, new DiscoveryStore(redis.client, keys));
  const deps = {
    leases: new LeaseManager(redis.client, keys),
    committer: new Committer(redis.client, keys),
    outbox: new OutboxMonitor(redis.client, keys),
    state,
    metrics: new Metrics(),
    log,
    leaseTtlMs: 5_000,
    outboxMaxLength: 1_000_000,
    now,
  };
  const live = new Poller({
    ...deps,
    sources,
    onHistoryOwed: async (scope, range) =>
      void (await store.request(scope.key, range, 'lookback', Date.now())),
  });
  const worker = new BackfillWorker({
    connection: redis.client,
    prefix: '{auditlog}',
    concurrency: 0,
    sliceMs,
    lockDurationMs: 5_000,
    store,
    state,
    catalog,
    sources,
    poller: deps,
    log,
  });
  const scope = config.scopes[0] as ScopeSpec;
  return {
    config,
    env,
    store,
    state,
    catalog,
    sources,
    deps,
    live,
    worker,
    scope,
    lines,
    pollLive: () => live.poll(scope, new AbortController().signal),
  };
}

async function outboxIds(): Promise<string[]> {
  const entries = await redis.client.xrange(keys.outbox('archive'), '-', '+');
  return entries.map(([, fields]) => fields[fields.indexOf('id') + 1] as string);
}

function truthIds(fromMs: number, toMs: number): string[] {
  return sim.truth.events({ scope: { kind: 'project', id: PROJECT }, fromMs, toMs }).map((e) => e.id);
}

async function liveState(state: ScopeStateStore): Promise<{ floor: number; hwm: number }> {
  const stored = await state.checkpoint(SCOPE);
  if (!stored) throw new Error('no live checkpoint');
  return stored.checkpoint.state as { floor: number; hwm: number };
}

async function liveHwm(state: ScopeStateStore): Promise<number> {
  const stored = await state.checkpoint(SCOPE);
  if (!stored) throw new Error('no live checkpoint');
  return (stored.checkpoint.state as { hwm: number }).hwm;
}

async function runToEnd(worker: BackfillWorker, store: BackfillStore, maxSlices = 200): Promise<number> {
  for (let slices = 1; slices <= maxSlices; slices++) {
    const run = await store.get(SCOPE);
    if (!run || run.status === 'done') return slices - 1;
    await worker.runSlice({ scope: SCOPE, runId: run.runId });
  }
  throw new Error('backfill did not finish');
}

describe('backfill lane', () => {
  it('takes a lookback beyond one day: live reads the last day, a backfill the rest, every event once', async () => {
    const s = setup('3d');
    const started = Date.now();
    expect((await s.pollLive()).outcome).toBe('completed');
    const checkpoint = (await s.state.checkpoint(SCOPE))?.checkpoint;
    const state = checkpoint?.state as { floor: number; owed: number; hwm: number };
    expect(state.floor).toBeGreaterThan(started - DAY - 2_000);
    expect(state.floor).toBeLessThan(started - DAY + 1_000);
    expect(state.owed).toBeGreaterThan(started - 3 * DAY - 1_000);
    expect(state.owed).toBeLessThan(started - 3 * DAY + 1_000);

    const run = await s.store.get(SCOPE);
    expect(run).toMatchObject({
      status: 'running',
      origin: 'lookback',
      fromMs: state.owed,
      toMs: state.floor,
      floorMs: state.floor,
    });
    sim.resetObservations();
    await runToEnd(s.worker, s.store);
    expect((await s.store.get(SCOPE))?.status).toBe('done');
    // Two 24 h windows, oldest first, one page each (sparse history), and never past the live floor.
    const windows = sim.requestLog.filter((r) => r.route === 'stackit.audit-log');
    expect(
      windows.map((r) => [Date.parse(r.startRange as string), Date.parse(r.endRange as string)]),
    ).toEqual([
      [state.owed, state.owed + DAY],
      [state.owed + DAY, state.floor],
    ]);
    // The backfill's seen-set is freed once it is done.
    expect(await redis.client.exists(keys.seen(backfillScopeKey(SCOPE)))).toBe(0);
    // Old by design, backfilled events stay out of the lag gauge (computed at scrape time for the
    // catalog's scopes, never the backfill lane's) and the late-arrival histogram.
    const metrics = await s.deps.metrics.registry.getMetricsAsJSON();
    const lag = metrics.find((m) => m.name === 'auditlog_checkpoint_lag_seconds');
    expect(lag?.values.map((v) => v.labels.scope)).not.toContain(backfillScopeKey(SCOPE));
    const late = metrics.find((m) => m.name === 'auditlog_late_arrival_seconds');
    const lateCount = late?.values.find(
      (v) => (v as { metricName?: string }).metricName === 'auditlog_late_arrival_seconds_count',
    )?.value;
    // The live lane read its first lookback (nothing is late in a first read), the backfill is old by design.
    expect(Number(await redis.client.hget(keys.checkpoint(SCOPE), 'committed'))).toBeGreaterThan(0);
    expect(lateCount ?? 0).toBe(0);

    const ids = await outboxIds();
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.sort()).toEqual(truthIds(state.owed, state.hwm).sort());
    expect(ids.length).toBeGreaterThan(150);
    // Live polls after the backfill ship nothing twice.
    expect((await s.pollLive()).outcome).toBe('completed');
    const after = await outboxIds();
    expect(new Set(after).size).toBe(after.length);
  });

  it('resumes a backfill cut into slices and failures from its checkpoint, without duplicates', async () => {
    const s = setup('5d', 40);
    await s.pollLive();
    const run = await s.store.get(SCOPE);
    // Every request takes 30 ms: a 40 ms slice gets about one window, then stops at a page boundary.
    sim.faults.set({ slowRate: 1, slowDelayMs: 30 });
    sim.faults.enqueue({ type: 'slow', delayMs: 30 }, { type: 'status', status: 503 });
    const slices = await runToEnd(s.worker, s.store);
    // Four windows, at most one per slice (one slice also failed on the 503): four slices or more,
    // each resuming where the last one committed.
    expect(slices).toBeGreaterThanOrEqual(4);
    expect((await s.store.get(SCOPE))?.failures).toBe(0);
    const ids = await outboxIds();
    expect(new Set(ids).size).toBe(ids.length);
    const hwm = await liveHwm(s.state);
    expect(ids.sort()).toEqual(truthIds(run!.fromMs, hwm).sort());
  });

  it('runs through the queue: the leader keeps one job per unfinished run until it is done', async () => {
    const s = setup('4d');
    await s.pollLive();
    const queue = new Queue<BackfillJobData>(BACKFILL_QUEUE, {
      connection: redis.connect(),
      prefix: '{auditlog}',
    });
    const worker = new BackfillWorker({
      connection: redis.connect(),
      prefix: '{auditlog}',
      concurrency: 1,
      sliceMs: 40,
      lockDurationMs: 5_000,
      store: s.store,
      state: s.state,
      catalog: s.catalog,
      sources: s.sources,
      poller: s.deps,
      log: s.deps.log,
    });
    const coordinator = new BackfillCoordinator({
      queue,
      store: s.store,
      state: s.state,
      catalog: s.catalog,
      leader: new LeaderLock(redis.client, keys.leader(), 'leader', 10_000),
      metrics: new Metrics(),
      log: s.deps.log,
      tickMs: 50,
    });
    sim.faults.set({ slowRate: 1, slowDelayMs: 30 });
    worker.start();
    coordinator.start();
    try {
      const deadline = Date.now() + 20_000;
      while ((await s.store.get(SCOPE))?.status !== 'done') {
        if (Date.now() > deadline) throw new Error('backfill did not finish through the queue');
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await coordinator.stop();
      await worker.stop(5_000);
      await queue.close();
    }
    // Sliced: several jobs carried the run, one after the other.
    expect(Number(await redis.client.hget(keys.backfill(SCOPE), 'jobSeq'))).toBeGreaterThanOrEqual(3);
    const ids = await outboxIds();
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.sort()).toEqual(truthIds((await s.store.get(SCOPE))!.fromMs, await liveHwm(s.state)).sort());
  });

  it('reads history just below the live floor only once late arrivals have had overlap + settleLag to show up', async () => {
    let clock = Date.now();
    const s = setup('30s', 60_000, () => clock);
    await s.pollLive();
    const floor = (await liveState(s.state)).floor;
    await s.store.request(SCOPE, { fromMs: clock - 2 * DAY, toMs: floor }, 'command', clock);
    const run = (await s.store.get(SCOPE))!;
    sim.resetObservations();
    await s.worker.runSlice({ scope: SCOPE, runId: run.runId });
    // The window ending at the floor (30 s ago) is not settled with a 1 m overlap: only the older one is read.
    expect(sim.requestLog.map((r) => Date.parse(r.endRange as string))).toEqual([clock - DAY]);
    expect((await s.store.get(SCOPE))?.status).toBe('running');
    await s.worker.runSlice({ scope: SCOPE, runId: run.runId });
    expect(sim.requestLog).toHaveLength(1);
    expect((await s.store.get(SCOPE))?.notBeforeMs).toBeGreaterThan(clock + 20_000);
    clock += 2 * 60_000;
    await s.worker.runSlice({ scope: SCOPE, runId: run.runId });
    expect((await s.store.get(SCOPE))?.status).toBe('done');
    expect(sim.requestLog.map((r) => Date.parse(r.endRange as string))).toEqual([
      clock - 2 * 60_000 - DAY,
      floor,
    ]);
  });

  it('extends further back only when asked after a run is done, and never re-reads what it covered', async () => {
    const s = setup('3d');
    await s.pollLive();
    const first = await s.store.get(SCOPE);
    const now = Date.now();
    expect(
      (await s.store.request(SCOPE, { fromMs: now - 5 * DAY, toMs: first!.floorMs }, 'command', now)).outcome,
    ).toBe('busy');
    await runToEnd(s.worker, s.store);
    expect(
      (await s.store.request(SCOPE, { fromMs: first!.fromMs + DAY, toMs: first!.floorMs }, 'command', now))
        .outcome,
    ).toBe('covered');
    const { outcome, run } = await s.store.request(
      SCOPE,
      { fromMs: now - 5 * DAY, toMs: first!.floorMs },
      'command',
      now,
    );
    expect(outcome).toBe('extended');
    expect(run).toMatchObject({
      fromMs: now - 5 * DAY,
      toMs: first!.fromMs,
      status: 'running',
      origin: 'command',
    });
    await runToEnd(s.worker, s.store);
    const ids = await outboxIds();
    expect(new Set(ids).size).toBe(ids.length);
    const hwm = await liveHwm(s.state);
    expect(ids.sort()).toEqual(truthIds(now - 5 * DAY, hwm).sort());
  });

  it('the backfill command queues, follows with progress bars on a TTY, and refuses what it cannot do', async () => {
    const s = setup('1h');
    const path = join(tmpdir(), `backfill-${process.pid}.yaml`);
    await writeFile(path, configText('1h'));
    Object.assign(process.env, s.env);
    const run = async (options: Parameters<typeof backfill>[0], tty: boolean) => {
      let out = '';
      let err = '';
      const code = await backfill(options, {
        out: (t) => {
          out += t;
        },
        err: (t) => {
          err += t;
        },
        tty,
        signal: new AbortController().signal,
        refreshMs: 50,
      });
      return { code, out, err };
    };

    const early = await run({ config: path, scope: [PROJECT], since: '2d' }, false);
    expect(early.code).toBe(1);
    expect(early.err).toContain('has not been polled yet');

    await s.pollLive();
    const worker = (async () => {
      await new Promise((r) => setTimeout(r, 200));
      await runToEnd(s.worker, s.store);
    })();
    const followed = await run({ config: path, scope: [PROJECT], since: '2d' }, true);
    await worker;
    expect(followed.err).toBe('');
    expect(followed.code).toBe(0);
    expect(followed.out).toContain(`${SCOPE}: backfill of `);
    expect(followed.out).toMatch(/\[#{30}\] 100%\s+2\/2 days/);
    expect(followed.out).toContain('\x1b[1F'); // redrawn in place
    expect(followed.out).toContain('backfill complete for 1 scope');

    const again = await run({ config: path, scope: [SCOPE], since: '2d', detach: true }, false);
    expect(again.out).toContain('already backfilled from');
    const status = await run({ config: path, status: true }, false);
    expect(status.out).toMatch(new RegExp(`backfill ${SCOPE}: done, .* read \\(\\d+ events committed\\)`));
    // --status needs no config: REDIS_URL names the Redis.
    const fromEnv = await run({ status: true }, false);
    expect(fromEnv.code).toBe(0);
    expect(fromEnv.out).toBe(status.out);
    const unknown = await run({ config: path, scope: ['nope'], since: '2d' }, false);
    expect(unknown).toMatchObject({ code: 1, err: expect.stringContaining('no scope "nope"') });
    const bad = await run({ config: path, scope: [PROJECT], since: 'yesterday' }, false);
    expect(bad.err).toContain('--since must be a duration');
  });
});
