import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Fault, MALFORMED_KINDS, type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { HOUR, itemBytes, list, MIN, manualClock, type PageBody, PROJECT, PROJECT_B, T0 } from './helpers.ts';

const window = { start: T0 - HOUR, end: T0, limit: 20 };
const scope = { kind: 'project', id: PROJECT } as const;

describe('request budget (429)', () => {
  it('answers 429 with the gateway body and Retry-After once the bucket is empty, per token', async () => {
    const clock = manualClock();
    const sim = await startSimulator({
      seed: 1,
      now: clock.now,
      stackit: { scopes: [{ kind: 'project', id: PROJECT, eventsPerMinute: 5 }] },
      budget: { capacity: 3, refillPerSecond: 0.25 },
    });
    try {
      for (let i = 0; i < 3; i++) expect((await list(sim, window)).status).toBe(200);
      const limited = await list(sim, window);
      expect(limited.status).toBe(429);
      expect(limited.text).toBe('{"message":"Too many requests","status":"429"}');
      expect(limited.headers.get('retry-after')).toBe('4');
      // A wrong token is refused before it can spend (or be refused by) the budget.
      expect((await list(sim, { ...window, token: 'other' })).status).toBe(401);

      clock.advance(2_000);
      const partial = await list(sim, window);
      expect(partial.status).toBe(429);
      expect(partial.headers.get('retry-after')).toBe('2');
      clock.advance(2_000);
      expect((await list(sim, window)).status).toBe(200);
      expect((await list(sim, window)).status).toBe(429);

      sim.retryAfterHeader = false;
      const bare = await list(sim, window);
      expect(bare.status).toBe(429);
      expect(bare.headers.get('retry-after')).toBeNull();
      expect(sim.stats().byStatus).toMatchObject({ '200': 4, '401': 1, '429': 4 });
    } finally {
      await sim.close();
    }
  });

  it('omits Retry-After when configured so from the start', async () => {
    const clock = manualClock();
    const sim = await startSimulator({
      now: clock.now,
      retryAfterHeader: false,
      budget: { capacity: 1, refillPerSecond: 1 },
      stackit: { scopes: [{ kind: 'project', id: PROJECT, eventsPerMinute: 1 }] },
    });
    try {
      expect((await list(sim, window)).status).toBe(200);
      const limited = await list(sim, window);
      expect(limited.status).toBe(429);
      expect(limited.headers.has('retry-after')).toBe(false);
    } finally {
      await sim.close();
    }
  });
});

describe('faults', () => {
  let sim: Simulator;
  const clock = manualClock();
  beforeAll(async () => {
    sim = await startSimulator({
      seed: 21,
      now: clock.now,
      stackit: {
        scopes: [
          { kind: 'project', id: PROJECT, eventsPerMinute: 10 },
          { kind: 'project', id: PROJECT_B, eventsPerMinute: 10 },
        ],
      },
    });
  });
  afterAll(() => sim.close());
  afterEach(() => {
    sim.faults.clear();
    sim.resetObservations();
  });

  it('queued faults hit the next requests in order, then normal service resumes', async () => {
    const correct = await list(sim, window);
    sim.resetObservations();
    sim.faults.enqueue(
      { type: 'status', status: 503, retryAfterSec: 7 },
      { type: 'status', status: 500 },
      { type: 'reset' },
      { type: 'status', status: 502 },
    );
    expect(sim.faults.pending()).toHaveLength(4);

    const first = await list(sim, window);
    expect(first.status).toBe(503);
    expect(first.headers.get('retry-after')).toBe('7');
    expect(first.json()).toEqual({ message: 'Service Unavailable', status: '503' });
    const second = await list(sim, window);
    expect(second.status).toBe(500);
    expect(second.json()).toMatchObject({
      message: 'Internal Server Error',
      status: 'Internal Server Error',
    });
    await expect(list(sim, window)).rejects.toThrow();
    expect((await list(sim, window)).status).toBe(502);
    const after = await list(sim, window);
    expect(after.status).toBe(200);
    expect(after.text).toBe(correct.text);

    const log = sim.requestLog;
    expect(log.map((r) => [r.status, r.fault])).toEqual([
      [503, 'status:503'],
      [500, 'status:500'],
      [0, 'reset'],
      [502, 'status:502'],
      [200, null],
    ]);
    expect(sim.stats().byStatus).toMatchObject({ '0': 1, '200': 1, '500': 1, '502': 1, '503': 1 });
  });

  it('each malformed kind produces what it says, and is transient', async () => {
    const correct = await list(sim, window);
    const good = correct.json() as PageBody;
    expect(good.items.length).toBe(20);
    const results = new Map<string, Awaited<ReturnType<typeof list>>>();
    for (const kind of MALFORMED_KINDS) {
      sim.faults.enqueue({ type: 'malformed', kind });
      results.set(kind, await list(sim, window));
    }
    for (const reply of results.values()) expect(reply.status).toBe(200);

    const invalid = results.get('invalid-json')!;
    expect(() => invalid.json()).toThrow();
    expect(correct.text.startsWith(invalid.text)).toBe(true);
    expect(invalid.text.length).toBeGreaterThan('{"items":[{'.length);
    expect(Number(invalid.headers.get('content-length'))).toBe(invalid.bytes.length);

    const html = results.get('html')!;
    expect(html.headers.get('content-type')).toMatch(/^text\/html/);
    expect(html.text).toMatch(/^<!DOCTYPE html>/);
    expect(() => html.json()).toThrow();

    expect(results.get('missing-items')!.json()).toEqual({ limit: 20 });

    const notArray = results.get('items-not-array')!.json() as Record<string, unknown>;
    expect(notArray.items).toEqual({});
    expect(notArray.limit).toBe(20);

    const wrong = results.get('item-wrong-types')!.json() as PageBody;
    expect(typeof wrong.items[0]?.id).toBe('number');
    expect(typeof wrong.items[0]?.eventTimeStamp).toBe('number');
    expect(wrong.items.slice(1)).toEqual(good.items.slice(1));
    expect(wrong.cursor).toBe(good.cursor);

    const badCursor = results.get('cursor-wrong-type')!.json() as Record<string, unknown>;
    expect(badCursor.cursor).toBe(42);
    expect(badCursor.items).toEqual(good.items);

    // Transient: the truth is unaffected and the same request now returns the correct bytes.
    expect((await list(sim, window)).text).toBe(correct.text);
    const truth = sim.truth.events({ scope, fromMs: T0 - HOUR, toMs: T0, visibleBy: T0 }).slice(0, 20);
    expect(itemBytes(correct.bytes).map((b) => b.toString())).toEqual(truth.map((e) => e.raw));
    expect(sim.requestLog.map((r) => r.fault)).toEqual([
      null,
      ...MALFORMED_KINDS.map((k) => `malformed:${k}`),
      null,
    ]);
  });

  it('repeat-cursor returns the request cursor again (and a restart cursor on a first page)', async () => {
    const first = (await list(sim, window)).json() as PageBody;
    const second = (await list(sim, { ...window, cursor: first.cursor })).json() as PageBody;

    sim.faults.enqueue({ type: 'repeat-cursor' });
    const looped = (await list(sim, { ...window, cursor: first.cursor })).json() as PageBody;
    expect(looped.cursor).toBe(first.cursor);
    expect(looped.items).toEqual(second.items);

    sim.faults.enqueue({ type: 'repeat-cursor' });
    const restart = (await list(sim, window)).json() as PageBody;
    expect(restart.items).toEqual(first.items);
    expect(typeof restart.cursor).toBe('string');
    const again = (await list(sim, { ...window, cursor: restart.cursor })).json() as PageBody;
    expect(again.items).toEqual(first.items);
  });

  it('slow responses are still correct and count as concurrent per scope', async () => {
    const correct = await list(sim, window);
    sim.resetObservations();
    expect(sim.maxConcurrentPerScope()).toBe(0);

    sim.faults.enqueue(
      { type: 'slow', delayMs: 300 },
      { type: 'slow', delayMs: 300 },
      { type: 'slow', delayMs: 300 },
    );
    const started = Date.now();
    const replies = await Promise.all([list(sim, window), list(sim, window), list(sim, window)]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    for (const reply of replies) expect(reply.text).toBe(correct.text);
    expect(sim.maxConcurrentPerScope()).toBe(3);
    const log = sim.requestLog;
    expect(log.every((r) => r.fault === 'slow:300' && r.endedAtMs - r.startedAtMs >= 250)).toBe(true);

    // Overlapping requests on different scopes are not concurrent on one scope.
    sim.resetObservations();
    sim.faults.enqueue({ type: 'slow', delayMs: 200 }, { type: 'slow', delayMs: 200 });
    await Promise.all([list(sim, window), list(sim, { ...window, id: PROJECT_B })]);
    expect(sim.maxConcurrentPerScope()).toBe(1);
    // Sequential requests never overlap.
    for (let i = 0; i < 3; i++) await list(sim, window);
    expect(sim.maxConcurrentPerScope()).toBe(1);
    expect(sim.stats().inFlight).toBe(0);
  });

  it('a client that gives up during a slow response is logged with status 0 and leaves no request in flight', async () => {
    sim.faults.enqueue({ type: 'slow', delayMs: 2_000 });
    const controller = new AbortController();
    const pending = fetch(
      `${sim.url}/v2/projects/${PROJECT}?start-time-range=${new Date(T0 - HOUR).toISOString()}&end-time-range=${new Date(T0).toISOString()}`,
      {
        headers: { authorization: `Bearer ${sim.token}` },
        signal: controller.signal,
      },
    );
    await new Promise((r) => setTimeout(r, 50));
    expect(sim.stats().inFlight).toBe(1);
    controller.abort();
    await expect(pending).rejects.toThrow();
    for (let i = 0; i < 50 && sim.stats().inFlight > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(sim.stats().inFlight).toBe(0);
    expect(sim.requestLog.at(-1)).toMatchObject({ status: 0, fault: 'slow:2000' });
  });

  it('rate-drawn faults are reproducible for a seed and stop when cleared', async () => {
    const run = async (): Promise<number[]> => {
      const s = await startSimulator({
        seed: 99,
        now: clock.now,
        faults: { serverErrorRate: 0.3, malformedRate: 0.2, malformedKinds: ['missing-items'] },
        stackit: { scopes: [{ kind: 'project', id: PROJECT, eventsPerMinute: 1 }] },
      });
      try {
        const statuses: number[] = [];
        for (let i = 0; i < 40; i++) {
          const reply = await list(s, window);
          statuses.push(reply.status === 200 && !reply.text.startsWith('{"items"') ? -1 : reply.status);
        }
        s.faults.clear();
        for (let i = 0; i < 5; i++) expect((await list(s, window)).status).toBe(200);
        return statuses;
      } finally {
        await s.close();
      }
    };
    const a = await run();
    const b = await run();
    expect(a).toEqual(b);
    const errors = a.filter((s) => s >= 500).length;
    const malformed = a.filter((s) => s === -1).length;
    expect(errors).toBeGreaterThan(3);
    expect(malformed).toBeGreaterThan(1);
    expect(errors + malformed).toBeLessThan(35);
  });

  it('PUT /_sim/faults controls the same injector over HTTP', async () => {
    const put = (body: unknown) =>
      fetch(`${sim.url}/_sim/faults`, { method: 'PUT', body: JSON.stringify(body) }).then(async (r) => ({
        status: r.status,
        json: (await r.json()) as Record<string, unknown>,
      }));
    const queued = await put({
      enqueue: [
        { type: 'status', status: 504 },
        { type: 'malformed', kind: 'html' },
      ],
    });
    expect(queued.status).toBe(200);
    expect(queued.json.queue).toHaveLength(2);
    expect((await list(sim, window)).status).toBe(504);
    expect((await list(sim, window)).headers.get('content-type')).toMatch(/text\/html/);
    expect((await list(sim, window)).status).toBe(200);

    expect((await put({ rates: { serverErrorRate: 1, serverErrorStatuses: [503] } })).status).toBe(200);
    expect(sim.faults.rates()).toEqual({ serverErrorRate: 1, serverErrorStatuses: [503] });
    expect((await list(sim, window)).status).toBe(503);
    expect((await put({ clear: true })).json).toMatchObject({ rates: {}, queue: [] });
    expect((await list(sim, window)).status).toBe(200);

    for (const bad of [
      { enqueue: [{ type: 'status', status: 418 }] },
      { rates: { serverErrorRate: 2 } },
      { enqueue: [{}] },
    ]) {
      expect((await put(bad)).status, JSON.stringify(bad)).toBe(400);
    }
    expect(() => sim.faults.enqueue({ type: 'nope' } as unknown as Fault)).toThrow(/unknown fault type/);
  });

  it('logs what the daemon sent, including its instance from the User-Agent', async () => {
    const first = (
      await list(sim, { ...window, userAgent: 'auditlog-shipper/0.1.0 (instance web-7f3a)' })
    ).json() as PageBody;
    await list(sim, { ...window, cursor: first.cursor, userAgent: 'curl/8.5.0' });
    await list(sim, { start: T0 - MIN, end: T0, limit: 'x', id: PROJECT_B });
    const [a, b, c] = sim.requestLog;
    expect(a).toMatchObject({
      route: 'stackit.audit-log',
      scope: { kind: 'project', id: PROJECT },
      startRange: new Date(T0 - HOUR).toISOString(),
      endRange: new Date(T0).toISOString(),
      limit: 20,
      cursorPresent: false,
      status: 200,
      instance: 'web-7f3a',
      items: 20,
      simNowMs: T0,
    });
    expect(b).toMatchObject({ cursorPresent: true, instance: null, userAgent: 'curl/8.5.0' });
    expect(c).toMatchObject({
      scope: { kind: 'project', id: PROJECT_B },
      limit: null,
      status: 400,
      items: 0,
    });
    expect(sim.stats()).toMatchObject({ requests: 3, itemsServed: 40 });
  });

  it('the request log is a bounded ring', async () => {
    const small = await startSimulator({
      now: clock.now,
      requestLogSize: 5,
      stackit: { scopes: [{ kind: 'project', id: PROJECT, eventsPerMinute: 1 }] },
    });
    try {
      for (let i = 0; i < 8; i++) await list(small, { ...window, limit: i + 1 });
      expect(small.requestLog.map((r) => r.limit)).toEqual([4, 5, 6, 7, 8]);
      expect(small.stats().requests).toBe(8);
    } finally {
      await small.close();
    }
  });

  it('a full paging run under faults still matches the truth once retried', async () => {
    sim.faults.set({ serverErrorRate: 0.2, resetRate: 0.1, malformedRate: 0.1 });
    const truth = sim.truth.events({ scope, fromMs: T0 - HOUR, toMs: T0, visibleBy: T0 });
    const ids: string[] = [];
    let cursor: string | undefined;
    for (let attempts = 0; attempts < 500; attempts++) {
      let page: PageBody | undefined;
      try {
        const reply = await list(sim, { ...window, cursor });
        const parsed = reply.status === 200 ? (reply.json() as PageBody) : undefined;
        if (
          parsed &&
          Array.isArray(parsed.items) &&
          (parsed.cursor === undefined || typeof parsed.cursor === 'string')
        ) {
          if (parsed.items.every((i) => typeof i.id === 'string')) page = parsed;
        }
      } catch {
        // reset or invalid JSON: retry
      }
      if (!page) continue;
      ids.push(...page.items.map((i) => i.id as string));
      cursor = page.cursor;
      if (!cursor) break;
    }
    expect(ids).toEqual(truth.map((e) => e.id));
    expect(sim.stats().faults).toBeGreaterThan(0);
  });
});
