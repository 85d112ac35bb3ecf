/**
 * The cloudscale source against the simulator, through the real pipeline (lease, fenced commit,
 * seen-set) on a real Redis, with a clock the tests move by hand. The oracle compares what reached the
 * outbox with the simulator's truth by the entries' bytes.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { withEnv } from '../../../src/config/fields.ts';
import type { ScopeSpec } from '../../../src/config/types.ts';
import { Metrics } from '../../../src/observability/metrics.ts';
import { Committer } from '../../../src/pipeline/commit.ts';
import { RedisKeys } from '../../../src/pipeline/keys.ts';
import { LeaseManager } from '../../../src/pipeline/lease.ts';
import { OutboxMonitor } from '../../../src/pipeline/outbox.ts';
import { Poller, type PollResult } from '../../../src/pipeline/poller.ts';
import { ScopeStateStore } from '../../../src/pipeline/scope-state.ts';
import { type CloudscaleOptions, type Simulator, startSimulator } from '../../../src/simulator/index.ts';
import { cloudscaleProviderSchema, cloudscaleScopeSchema } from '../../../src/sources/cloudscale/config.ts';
import { CloudscaleSource } from '../../../src/sources/cloudscale/source.ts';
import { ProviderError } from '../../../src/sources/errors.ts';
import { judgeByRaw, rawOfLine, rawSummary, startHostileServer } from '../../support/cloudscale.ts';
import { memoryLogger } from '../../support/logger.ts';
import { startTestRedis, type TestRedis } from '../../support/redis.ts';

const MIN = 60_000;
const T0 = Date.UTC(2026, 2, 1, 12, 0, 0);
const TOKEN = 'cs-token-3f9a-never-print-me';
const SCOPE_KEY = 'cloudscale:project:alpha';
const keys = new RedisKeys('{test}');

let redis: TestRedis;
let sim: Simulator | undefined;
let now = T0;
const clock = () => now;

beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis.stop();
});
beforeEach(async () => {
  now = T0;
  await redis.client.flushall();
});
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function simulate(cloudscale: Omit<CloudscaleOptions, 'projects'> = {}, eventsPerMinute = 60) {
  sim = await startSimulator({
    seed: 21,
    now: clock,
    cloudscale: {
      projects: [{ name: 'alpha', token: TOKEN, eventsPerMinute }],
      trafficStartMs: T0 - 30 * MIN,
      ...cloudscale,
    },
  });
  return sim;
}

interface Setup {
  readonly lookback?: string;
  readonly overlap?: string;
  readonly attempts?: number;
  readonly maxPagesPerPoll?: number;
  readonly apiUrl?: string;
  /** Called after every provider request (e.g. to let simulated time pass). */
  readonly onRequest?: () => void;
}

function setup(s: Simulator, options: Setup = {}) {
  const env = { CS_TOKEN: TOKEN };
  const settings = withEnv(env, () =>
    cloudscaleProviderSchema.parse({
      apiUrl: options.apiUrl ?? s.url,
      lookback: options.lookback ?? '1h',
      overlap: options.overlap ?? '5m',
      retry: { attempts: options.attempts ?? 3, initialBackoff: '10ms', maxBackoff: '20ms' },
      ...(options.maxPagesPerPoll ? { maxPagesPerPoll: options.maxPagesPerPoll } : {}),
    }),
  );
  const { log, lines } = memoryLogger();
  const source = new CloudscaleSource(
    { name: 'cs', type: 'cloudscale', settings },
    { log, instanceId: 't', onRequest: () => options.onRequest?.() },
  );
  const scope: ScopeSpec = {
    key: SCOPE_KEY,
    provider: 'cs',
    providerType: 'cloudscale',
    ref: { kind: 'project', id: 'alpha' },
    intervalMs: 1_000,
    sinks: ['archive'],
    settings: withEnv(env, () =>
      cloudscaleScopeSchema.parse({ project: 'alpha', auth: { token: '${CS_TOKEN}' } }),
    ),
  };
  const poller = new Poller({
    sources: new Map([['cs', source]]),
    leases: new LeaseManager(redis.client, keys),
    committer: new Committer(redis.client, keys),
    outbox: new OutboxMonitor(redis.client, keys),
    state: new ScopeStateStore(redis.client, keys),
    metrics: new Metrics(),
    log,
    leaseTtlMs: 10_000,
    outboxMaxLength: 1_000_000,
    now: clock,
  });
  const poll = () => poller.poll(scope, new AbortController().signal);
  return { poll, lines, source };
}

async function delivered(): Promise<{ id: string; raw: string }[]> {
  const entries = await redis.client.xrange(keys.outbox('archive'), '-', '+');
  return entries.map(([, fields]) => {
    const f = new Map<string, string>();
    for (let i = 0; i < fields.length; i += 2) f.set(fields[i] as string, fields[i + 1] as string);
    return { id: f.get('id') as string, raw: rawOfLine(f.get('line') as string) };
  });
}

/** Delivered exactly the truth: every visible entry (with a timestamp from `fromMs` on) once, unaltered. */
async function expectExactlyTruth(s: Simulator, fromMs?: number): Promise<void> {
  const v = judgeByRaw(s.cloudscale.truth({ project: 'alpha', fromMs }), await delivered());
  expect(v.expected).toBeGreaterThan(0);
  expect(v.missing.length, rawSummary(v)).toBe(0);
  expect(v.duplicated.length, rawSummary(v)).toBe(0);
  expect(v.unexpected.length, rawSummary(v)).toBe(0);
  expect(v.repeatedIds, rawSummary(v)).toEqual([]);
}

async function storedState(): Promise<Record<string, unknown> | undefined> {
  const text = await redis.client.hget(keys.checkpoint(SCOPE_KEY), 'state');
  return text === null ? undefined : (JSON.parse(text) as Record<string, unknown>);
}

function failure(result: PollResult): ProviderError {
  expect(result.outcome).toBe('failed');
  const error = 'error' in result ? result.error : undefined;
  expect(error).toBeInstanceOf(ProviderError);
  return error as ProviderError;
}

/** Lets a second of simulated time pass (called after each provider request). */
function passSecond(): void {
  now += 1_000;
}

const projectLogRequests = (s: Simulator) =>
  s.requestLog.filter((r) => r.route === 'cloudscale.project-logs');

describe('cloudscale source: paging and poll_more', () => {
  it('reads a backlog page by page from now − lookback, then only what is new from the stored poll_more', async () => {
    const s = await simulate({}, 40);
    const { poll } = setup(s);
    const first = await poll();
    expect(first).toMatchObject({ outcome: 'completed' });
    expect('pages' in first && first.pages).toBeGreaterThan(5);
    const requests = projectLogRequests(s);
    expect(requests[0]?.startRange).toBe(new Date(T0 - 60 * MIN).toISOString());
    expect(requests.slice(1).every((r) => r.cursorPresent)).toBe(true);
    const state = await storedState();
    expect(new URL(state?.url as string).searchParams.get('cursor')).toMatch(/^\d+$/);
    expect(state).toMatchObject({ v: 1, originMs: T0 - 60 * MIN, urlAtMs: T0 });
    expect(state?.sinceMs).toBeUndefined();
    await expectExactlyTruth(s);

    const before = (await delivered()).length;
    now += 2 * MIN;
    s.resetObservations();
    const second = await poll();
    // From the stored cursor: the links keep the first request's start and carry a cursor.
    const later = projectLogRequests(s);
    expect(later.length).toBeGreaterThan(0);
    expect(later.every((r) => r.cursorPresent && r.startRange === requests[0]?.startRange)).toBe(true);
    expect('added' in second && second.added).toBe((await delivered()).length - before);
    expect('duplicates' in second && second.duplicates).toBe(0);
    await expectExactlyTruth(s);
  });

  it('delivers late commits, backdated entries and byte-identical twins exactly once', async () => {
    const s = await simulate(
      {
        commit: { minMs: 0, maxMs: 300, lateFraction: 0.1, lateMaxMs: 15_000 },
        backdate: { fraction: 0.1, maxMs: 60_000 },
        twinFraction: 0.05,
      },
      300,
    );
    const { poll } = setup(s);
    for (let i = 0; i < 25; i++) {
      expect((await poll()).outcome).toBe('completed');
      now += 2_000;
    }
    s.cloudscale.stopTraffic();
    now += 20_000;
    await poll();
    const truth = s.cloudscale.truth({ project: 'alpha' });
    const lateAfterFirstPoll = truth.filter((e) => e.committedAtMs > T0 && e.insertedAtMs <= T0);
    expect(lateAfterFirstPoll.length).toBeGreaterThan(0);
    expect(truth.filter((e) => e.twinOf !== null).length).toBeGreaterThan(10);
    await expectExactlyTruth(s);
  });

  it('stops after maxPagesPerPoll and continues in the next poll', async () => {
    const s = await simulate({}, 40);
    const { poll, lines } = setup(s, { maxPagesPerPoll: 2 });
    const first = await poll();
    expect('pages' in first && first.pages).toBe(2);
    expect(lines().some((l) => String(l.msg).includes('read maxPagesPerPoll pages'))).toBe(true);
    expect((await delivered()).length).toBe(400);
    for (let i = 0; i < 10; i++) await poll();
    await expectExactlyTruth(s);
  });
});

describe('cloudscale source: retries', () => {
  it('retries a 503 and a 429, honouring Retry-After', async () => {
    const s = await simulate({}, 5);
    // A second of simulated time per request refills the budget: 1 request, then one every 2 s.
    const { poll } = setup(s, { attempts: 3, onRequest: passSecond });
    s.faults.enqueue({ type: 'status', status: 503, retryAfterSec: 1 });
    s.budget.set({ capacity: 1, refillPerSecond: 0.5 });
    const started = Date.now();
    const result = await poll();
    expect(result.outcome).toBe('completed');
    expect(projectLogRequests(s).map((r) => r.status)).toEqual([503, 429, 200]);
    // Backoff is configured at 10-20 ms: only the two Retry-After: 1 explain the wait.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_900);
    await expectExactlyTruth(s);
  });

  it('retries through a maintenance window', async () => {
    const s = await simulate();
    // Each request lets a second of simulated time pass; the window closes after the third.
    const { poll } = setup(s, { attempts: 5, onRequest: passSecond });
    s.cloudscale.setMaintenance(T0 + 2_500, 0);
    expect((await poll()).outcome).toBe('completed');
    expect(
      projectLogRequests(s)
        .map((r) => r.status)
        .slice(0, 4),
    ).toEqual([503, 503, 503, 200]);
    await expectExactlyTruth(s);
  });

  it('fails the poll when maintenance outlasts the retries, naming provider, project, status, URL; nothing is lost', async () => {
    const s = await simulate();
    const { poll, lines } = setup(s, { attempts: 2 });
    s.cloudscale.setMaintenance(T0 + MIN, 0);
    const error = failure(await poll());
    expect(error.reason).toBe('server_error');
    expect(error.message).toBe(
      `cloudscale provider "cs", project alpha, page 1: HTTP 503 (maintenance) from GET ${s.url}/v1/project-logs: Service temporarily unavailable, try again later.`,
    );
    expect(await storedState()).toBeUndefined();
    now += MIN;
    expect((await poll()).outcome).toBe('completed');
    await expectExactlyTruth(s);
    expect(JSON.stringify(lines())).not.toContain(TOKEN);
  });

  it('fails on 401 without retrying, and never prints the token', async () => {
    const s = await simulate();
    const { poll, lines } = setup(s);
    s.cloudscale.revokeTokens('alpha');
    const error = failure(await poll());
    expect(error.reason).toBe('unauthorized');
    expect(error.message).toBe(
      `cloudscale provider "cs", project alpha, page 1: HTTP 401 from GET ${s.url}/v1/project-logs: Invalid token.`,
    );
    expect(projectLogRequests(s)).toHaveLength(1);
    expect(JSON.stringify(lines())).not.toContain(TOKEN);
  });
});

describe('cloudscale source: lost or refused checkpoints', () => {
  it.each([400, 404, 410] as const)(
    'restarts from the newest delivered time minus the overlap when the stored cursor is refused (%i): nothing lost, nothing twice',
    async (status) => {
      const s = await simulate(
        { commit: { minMs: 0, maxMs: 200, lateFraction: 0.05, lateMaxMs: 5_000 } },
        120,
      );
      const { poll, lines } = setup(s, { overlap: '3m' });
      await poll();
      now += 30_000;
      await poll();
      const hwmMs = (await storedState())?.hwmMs as number;
      now += 30_000;
      s.cloudscale.rejectCursors(1, status);
      s.resetObservations();
      const result = await poll();
      expect(result.outcome).toBe('completed');
      const requests = projectLogRequests(s);
      expect(requests[0]).toMatchObject({ status, cursorPresent: true });
      expect(requests[1]).toMatchObject({
        status: 200,
        cursorPresent: false,
        startRange: new Date(hwmMs - 3 * MIN).toISOString(),
      });
      // The re-read overlapped what was delivered; the seen-set dropped those.
      expect('duplicates' in result && result.duplicates).toBeGreaterThan(50);
      expect(
        lines().some((l) => l.level === 40 && String(l.msg).includes('the stored cursor was refused')),
      ).toBe(true);
      for (let i = 0; i < 5; i++) {
        now += 2_000;
        await poll();
      }
      s.cloudscale.stopTraffic();
      now += 10_000;
      await poll();
      await expectExactlyTruth(s);
    },
  );

  it('recovers from a refused cursor in the middle of a backlog of backdated entries: nothing lost, nothing twice', async () => {
    // Short polls leave the read behind the log; backdated entries sit far from their ids' neighbours.
    const s = await simulate({ backdate: { fraction: 0.3, maxMs: 4 * MIN } }, 200);
    const { poll } = setup(s, { overlap: '1m', maxPagesPerPoll: 2 });
    for (let i = 0; i < 20; i++) await poll();
    now += 10_000;
    for (let i = 0; i < 5; i++) await poll();
    s.cloudscale.rejectCursors(1, 404);
    for (let i = 0; i < 20; i++) await poll();
    s.cloudscale.stopTraffic();
    now += 5_000;
    for (let i = 0; i < 20; i++) await poll();
    await expectExactlyTruth(s);
  });

  it('without a checkpoint but with a seen-set, restarts at the newest delivered time minus the overlap when the lookback would skip', async () => {
    const s = await simulate({}, 30);
    const { poll, lines } = setup(s, { lookback: '5m', overlap: '2m' });
    now += 10 * MIN;
    await poll();
    await new ScopeStateStore(redis.client, keys).reset(SCOPE_KEY);
    now += 20 * MIN;
    s.resetObservations();
    const result = await poll();
    expect(result.outcome).toBe('completed');
    const start = Date.parse(projectLogRequests(s)[0]?.startRange as string);
    expect(start).toBeLessThan(now - 15 * MIN);
    expect('duplicates' in result && result.duplicates).toBeGreaterThan(0);
    expect(lines().some((l) => String(l.msg).includes('no checkpoint, but events up to'))).toBe(true);
    // Everything from the first poll's start (lookback) on, including the 15 minutes a fresh lookback skips.
    await expectExactlyTruth(s, T0 + 5 * MIN);
  });

  it('restarts from time when the stored cursor points to another origin, and never calls it', async () => {
    const s = await simulate();
    const hostile = await startHostileServer();
    try {
      const { poll, lines } = setup(s);
      await poll();
      const state = (await storedState()) as Record<string, unknown>;
      const url = new URL(state.url as string);
      await redis.client.hset(
        keys.checkpoint(SCOPE_KEY),
        'state',
        JSON.stringify({ ...state, url: `${hostile.origin}${url.pathname}${url.search}` }),
      );
      now += MIN;
      expect((await poll()).outcome).toBe('completed');
      expect(hostile.requests).toEqual([]);
      expect(
        lines().some((l) =>
          String(l.msg).includes(`refusing to send credentials to ${hostile.origin}/v1/project-logs`),
        ),
      ).toBe(true);
      expect(new URL((await storedState())?.url as string).origin).toBe(s.url);
      await expectExactlyTruth(s);
    } finally {
      await hostile.close();
    }
  });
});

describe('cloudscale source: the origin guard and broken pages', () => {
  it('refuses next/poll_more on another origin: the token goes nowhere else, nothing is committed', async () => {
    const s = await simulate();
    const hostile = await startHostileServer();
    try {
      const { poll, lines } = setup(s);
      s.cloudscale.linkOrigin = hostile.origin;
      const error = failure(await poll());
      expect(error.reason).toBe('origin_refused');
      expect(error.message).toMatch(
        new RegExp(
          `^cloudscale provider "cs", project alpha, page 1: next: refusing to send credentials to ${hostile.origin}/v1/project-logs; only ${s.url} is configured`,
        ),
      );
      expect(error.message).not.toContain('cursor=');
      expect(hostile.requests).toEqual([]);
      expect(await storedState()).toBeUndefined();
      expect(await delivered()).toEqual([]);
      expect(JSON.stringify(lines())).not.toContain(TOKEN);

      s.cloudscale.linkOrigin = undefined;
      expect((await poll()).outcome).toBe('completed');
      await expectExactlyTruth(s);
    } finally {
      await hostile.close();
    }
  });

  it('also refuses a foreign poll_more at the end of the log', async () => {
    const s = await simulate({}, 5);
    const hostile = await startHostileServer();
    try {
      const { poll } = setup(s);
      await poll();
      s.cloudscale.linkOrigin = hostile.origin;
      now += MIN;
      expect(failure(await poll()).message).toContain(
        `poll_more: refusing to send credentials to ${hostile.origin}`,
      );
      expect(hostile.requests).toEqual([]);
    } finally {
      await hostile.close();
    }
  });

  it('fails on a pagination loop, and the next poll goes on', async () => {
    const s = await simulate({}, 40);
    const { poll } = setup(s);
    await poll();
    now += 6 * MIN;
    s.faults.enqueue({ type: 'repeat-cursor' });
    expect(failure(await poll()).reason).toBe('pagination_loop');
    expect((await poll()).outcome).toBe('completed');
    await expectExactlyTruth(s);
  });

  it.each([
    'invalid-json',
    'html',
    'missing-items',
    'items-not-array',
    'item-wrong-types',
    'cursor-wrong-type',
  ] as const)('fails on a %s page without committing it, and reads it again next time', async (kind) => {
    const s = await simulate();
    const { poll } = setup(s);
    s.faults.enqueue({ type: 'malformed', kind });
    expect(['invalid_json', 'invalid_response']).toContain(failure(await poll()).reason);
    expect(await delivered()).toEqual([]);
    expect((await poll()).outcome).toBe('completed');
    await expectExactlyTruth(s);
  });

  it('ships an entry the API keeps sending without a usable time, with anomalies, after three polls', async () => {
    const s = await simulate({}, 5);
    const { poll } = setup(s);
    s.faults.enqueue(
      ...Array.from({ length: 3 }, () => ({ type: 'malformed' as const, kind: 'item-wrong-types' as const })),
    );
    expect((await poll()).outcome).toBe('failed');
    expect((await poll()).outcome).toBe('failed');
    expect((await poll()).outcome).toBe('completed');
    const lines = (await redis.client.xrange(keys.outbox('archive'), '-', '+')).map(
      ([, f]) => f[f.indexOf('line') + 1] as string,
    );
    const flagged = lines.filter((line) => line.includes('"anomalies"'));
    expect(flagged).toHaveLength(1);
    expect(flagged[0]).toContain('timestamp: expected an ISO 8601 date-time, got number');
  });
});

describe('cloudscale source: identical entries and repeating pages (issue 9 §4)', () => {
  it('numbers byte-identical entries apart by more than any fixed memory, and loses none', async () => {
    const s = await simulate({ twinFraction: 0.05, twinDistance: 150 }, 300);
    const { poll } = setup(s);
    for (let i = 0; i < 4; i++) {
      expect((await poll()).outcome).toBe('completed');
      now += 30_000;
    }
    s.cloudscale.stopTraffic();
    now += 5_000;
    expect((await poll()).outcome).toBe('completed');
    const truth = s.cloudscale.truth({ project: 'alpha' });
    const twins = truth.filter((e) => e.twinOf !== null);
    expect(twins.length).toBeGreaterThan(20);
    expect(twins.every((t) => t.id - (t.twinOf as number) > 100)).toBe(true);
    await expectExactlyTruth(s);
  });

  it('fails a poll whose next page repeats a page’s entries under a new cursor, commits nothing twice, then recovers', async () => {
    const s = await simulate({ pageSize: 50 }, 40);
    // The second response's links stand where it stood: the third request returns its entries again.
    s.faults.enqueue({ type: 'slow', delayMs: 0 }, { type: 'repeat-page' });
    const { poll, lines } = setup(s);
    const failed = failure(await poll());
    expect(failed.reason).toBe('pagination_loop');
    expect(failed.message).toMatch(/page 3: the API returned exactly the entries of a page already read/);
    const afterFailure = judgeByRaw(s.cloudscale.truth({ project: 'alpha' }), await delivered());
    expect(afterFailure.delivered).toBe(100);
    expect(afterFailure.duplicated).toEqual([]);
    expect(afterFailure.repeatedIds).toEqual([]);

    // The stored cursor is the one that does not move: the next poll sees it and restarts from time.
    expect((await poll()).outcome).toBe('completed');
    expect(lines().some((l) => String(l.msg).includes('a cursor that does not move'))).toBe(true);
    await expectExactlyTruth(s);
  });

  it('never ships repeated pages of an API that keeps repeating them, and says so on every poll', async () => {
    const s = await simulate({ pageSize: 50 }, 40);
    const { poll } = setup(s);
    expect((await poll()).outcome).toBe('completed');
    now += 2 * MIN;
    s.faults.enqueue(...Array.from({ length: 40 }, () => ({ type: 'repeat-page' as const })));
    for (let i = 0; i < 3; i++) {
      expect(failure(await poll()).reason).toBe('pagination_loop');
      now += MIN;
    }
    const v = judgeByRaw(s.cloudscale.truth({ project: 'alpha' }), await delivered());
    expect(v.duplicated, rawSummary(v)).toEqual([]);
    expect(v.unexpected, rawSummary(v)).toEqual([]);
    expect(v.repeatedIds, rawSummary(v)).toEqual([]);
    s.faults.clear();
    expect((await poll()).outcome).toBe('completed');
    await expectExactlyTruth(s);
  });
});
