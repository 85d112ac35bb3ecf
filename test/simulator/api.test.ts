import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { parseRfc3339Us } from '../../src/simulator/rfc3339.ts';
import {
  DAY,
  FOLDER,
  HOUR,
  itemBytes,
  list,
  MIN,
  manualClock,
  type PageBody,
  PROJECT,
  PROJECT_B,
  pageAll,
  T0,
} from './helpers.ts';

const scope = { kind: 'project', id: PROJECT } as const;

describe('STACKIT audit log: request validation', () => {
  let sim: Simulator;
  const clock = manualClock();
  beforeAll(async () => {
    sim = await startSimulator({
      seed: 11,
      now: clock.now,
      stackit: {
        token: 'secret-token',
        scopes: [
          { kind: 'project', id: PROJECT, eventsPerMinute: 30 },
          { kind: 'folder', id: FOLDER, eventsPerMinute: 5 },
        ],
      },
    });
  });
  afterAll(() => sim.close());

  const ok = { start: T0 - HOUR, end: T0 };

  it('401 without or with a wrong bearer token', async () => {
    for (const token of [null, 'wrong-token']) {
      const reply = await list(sim, { ...ok, token });
      expect(reply.status).toBe(401);
      expect(reply.json()).toMatchObject({
        message: 'The request could not be authorized',
        path: `/v2/projects/${PROJECT}`,
        status: 'Unauthorized',
      });
    }
    expect((await list(sim, ok)).status).toBe(200);
  });

  it('400 for missing, malformed, reversed, too long or too old ranges', async () => {
    const cases = [
      { end: T0 },
      { start: T0 - HOUR },
      { start: 'yesterday', end: T0 },
      { start: T0 - HOUR, end: '2025-06-01 12:00' },
      { start: T0, end: T0 - MIN },
      { start: T0 - DAY - 1, end: T0 },
      { start: T0 - 90 * DAY - MIN, end: T0 - 90 * DAY + 10 * MIN },
    ];
    for (const c of cases) {
      const reply = await list(sim, c);
      expect(reply.status, JSON.stringify(c)).toBe(400);
      const body = reply.json() as Record<string, unknown>;
      expect(body).toMatchObject({ path: `/v2/projects/${PROJECT}`, status: 'Bad Request' });
      expect(typeof body.message).toBe('string');
      expect(Number.isNaN(Date.parse(body.timestamp as string))).toBe(false);
    }
    // The limits themselves are allowed: exactly 24 h, and a start just inside retention.
    expect((await list(sim, { start: T0 - DAY, end: T0 })).status).toBe(200);
    expect((await list(sim, { start: T0 - 90 * DAY + MIN, end: T0 - 89 * DAY })).status).toBe(200);
    // An offset is understood: 14:00+02:00 is 12:00Z.
    expect(
      (await list(sim, { start: '2025-06-01T13:00:00+02:00', end: '2025-06-01T14:00:00+02:00' })).status,
    ).toBe(200);
  });

  it('400 for limit 0, negative, fractional or not a number; 1000 is clamped to 100; default 50', async () => {
    for (const limit of ['0', '-5', '2.5', 'abc', '']) {
      expect((await list(sim, { ...ok, limit })).status, `limit=${limit}`).toBe(400);
    }
    const clamped = (await list(sim, { ...ok, limit: 1000 })).json() as PageBody;
    expect(clamped.limit).toBe(100);
    expect(clamped.items).toHaveLength(100);
    expect(typeof clamped.cursor).toBe('string');
    const byDefault = (await list(sim, ok)).json() as PageBody;
    expect(byDefault.limit).toBe(50);
    expect(byDefault.items).toHaveLength(50);
  });

  it('404 for a scope it does not serve (also under the wrong kind), 400 for a non-UUID id', async () => {
    const unknown = await list(sim, { ...ok, id: PROJECT_B });
    expect(unknown.status).toBe(404);
    expect(unknown.json()).toMatchObject({ message: `${PROJECT_B} not found.`, status: 'Not Found' });
    expect((await list(sim, { ...ok, kind: 'folders', id: PROJECT })).status).toBe(404);
    expect((await list(sim, { ...ok, kind: 'folders', id: FOLDER })).status).toBe(200);
    expect((await list(sim, { ...ok, id: 'not-a-uuid' })).status).toBe(400);
  });

  it('treats the range as half-open [start, end) on eventTimeStamp, at µs precision', async () => {
    const events = sim.truth.events({ scope, fromMs: T0 - HOUR, toMs: T0, visibleBy: T0 });
    const sub = events.find((e) => /\.\d{5,6}Z$/.test(e.eventTimeText));
    expect(sub).toBeDefined();
    const e = sub!;
    const from = (await list(sim, { start: e.eventTimeText, end: T0, limit: 1 })).json() as PageBody;
    expect(from.items[0]?.id).toBe(e.id);
    const window = await pageAll(sim, { start: T0 - HOUR, end: e.eventTimeText, limit: 100 });
    const us = (text: string): number => parseRfc3339Us(text) as number;
    const expected = events.filter((x) => us(x.eventTimeText) < us(e.eventTimeText)).map((x) => x.id);
    expect(window.ids).toEqual(expected);
    expect(window.ids).not.toContain(e.id);
  });
});

describe('STACKIT audit log: paging against the truth', () => {
  let sim: Simulator;
  const clock = manualClock();
  beforeAll(async () => {
    sim = await startSimulator({
      seed: 3,
      now: clock.now,
      stackit: {
        scopes: [{ kind: 'project', id: PROJECT, eventsPerMinute: 20 }],
        delay: { minMs: 500, maxMs: 5_000, lateFraction: 0.1, lateMaxMs: 300_000 },
      },
    });
  });
  afterAll(() => sim.close());

  it('returns exactly the visible events of the window, once each, with the truth raw bytes', async () => {
    const start = T0 - 2 * HOUR;
    const truth = sim.truth.events({ scope, fromMs: start, toMs: T0, visibleBy: T0 });
    expect(truth.length).toBeGreaterThan(2000);
    for (const limit of [100, 7]) {
      const { pages, raws, ids } = await pageAll(sim, { start, end: T0, limit });
      expect(ids).toEqual(truth.map((e) => e.id));
      expect(new Set(ids).size).toBe(ids.length);
      expect(raws.map((r) => r.toString('utf8'))).toEqual(truth.map((e) => e.raw));
      // Every page but the last is full and carries a cursor; the last carries none.
      for (const page of pages.slice(0, -1)) {
        expect(page.items).toHaveLength(limit);
        expect(typeof page.cursor).toBe('string');
      }
      expect(pages.at(-1)?.cursor).toBeUndefined();
    }
  });

  it('serves raw JSON that a parse/stringify round trip would alter, yet parses to the same data', () => {
    const truth = sim.truth.events({ scope, fromMs: T0 - HOUR, toMs: T0 });
    const altered = truth.filter((e) => JSON.stringify(JSON.parse(e.raw)) !== e.raw);
    expect(altered.length).toBeGreaterThan(truth.length / 4);
    expect(truth.some((e) => e.raw.includes('\\/'))).toBe(true);
    expect(truth.some((e) => /\\u00[ef][0-9a-f]/i.test(e.raw))).toBe(true);
    expect(truth.some((e) => /[:[,](1e3|1E3|1\.5e2|8\.0e-1|0\.80|3\.6e3|3600\.0)[,}\]]/.test(e.raw))).toBe(
      true,
    );
    for (const e of truth) {
      const item = JSON.parse(e.raw) as Record<string, unknown>;
      expect(item.id).toBe(e.id);
      expect(item.eventTimeStamp).toBe(e.eventTimeText);
      expect(Date.parse(e.eventTimeText)).toBe(e.eventTimeMs);
      expect(Date.parse(item.receivedTimeStamp as string)).toBeGreaterThanOrEqual(e.eventTimeMs);
      for (const key of [
        'eventName',
        'eventSource',
        'eventVersion',
        'region',
        'sourceIpAddress',
        'userAgent',
      ]) {
        expect(typeof item[key], key).toBe('string');
      }
      expect(['ADMIN_ACTIVITY', 'SYSTEM_EVENT', 'POLICY_DENIED']).toContain(item.eventType);
      expect(['INFO', 'ERROR']).toContain(item.severity);
      expect(['PUBLIC', 'PRIVATE']).toContain(item.visibility);
      expect(typeof (item.initiator as { id: unknown }).id).toBe('string');
      expect((item.request as { endpoint: string }).endpoint).toMatch(/^(GET|POST|PUT|PATCH|DELETE) \//);
    }
    // Fractional precision varies: none, ms, 10 µs and µs.
    const digits = new Set(truth.map((e) => /(?:\.(\d+))?Z$/.exec(e.eventTimeText)?.[1]?.length ?? 0));
    expect([...digits].sort()).toEqual([0, 3, 5, 6]);
  });

  it('hides late events until they become visible, then returns them for the same window', async () => {
    const start = T0 - 30 * MIN;
    const all = sim.truth.events({ scope, fromMs: start, toMs: T0 });
    const late = all.filter((e) => e.visibleAtMs > T0);
    expect(late.length).toBeGreaterThan(0);
    const before = await pageAll(sim, { start, end: T0, limit: 100 });
    for (const e of late) expect(before.ids).not.toContain(e.id);
    expect(before.ids).toHaveLength(all.length - late.length);

    clock.set(Math.max(...late.map((e) => e.visibleAtMs)));
    try {
      const after = await pageAll(sim, { start, end: T0, limit: 100 });
      expect(after.ids).toEqual(all.map((e) => e.id));
    } finally {
      clock.set(T0);
    }
  });

  it('keeps the cursor of a page only when more items exist at that moment', async () => {
    const start = T0 - 3 * MIN;
    const n = sim.truth.count({ scope, fromMs: start, toMs: T0, visibleBy: T0 });
    expect(n).toBeGreaterThan(2);
    expect(n).toBeLessThanOrEqual(100);
    const exact = (await list(sim, { start, end: T0, limit: n })).json() as PageBody;
    expect(exact.items).toHaveLength(n);
    expect(exact.cursor).toBeUndefined();
    const short = (await list(sim, { start, end: T0, limit: n - 1 })).json() as PageBody;
    expect(short.cursor).toBeDefined();
    const rest = (await list(sim, { start, end: T0, limit: n - 1, cursor: short.cursor })).json() as PageBody;
    expect(rest.items).toHaveLength(1);
    expect(rest.cursor).toBeUndefined();
  });

  it('400 for a tampered cursor, a foreign one, or one reused with another range or scope', async () => {
    const start = T0 - HOUR;
    const first = (await list(sim, { start, end: T0, limit: 10 })).json() as PageBody;
    const cursor = first.cursor!;
    expect((await list(sim, { start, end: T0, limit: 10, cursor })).status).toBe(200);
    // Another limit is fine: the cursor is bound to scope and range, not to the page size.
    expect((await list(sim, { start, end: T0, limit: 50, cursor })).status).toBe(200);

    const [payload = '', signature = ''] = cursor.split('.');
    const decoded = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { t: number };
    const forged = Buffer.from(JSON.stringify({ ...decoded, t: decoded.t - 1 })).toString('base64url');
    const flipped = `${payload.slice(0, -2)}${payload.at(-2) === 'A' ? 'B' : 'A'}${payload.at(-1)}.${signature}`;
    for (const bad of [`${forged}.${signature}`, flipped, 'abc', `${payload}.`, `${cursor}x`]) {
      const reply = await list(sim, { start, end: T0, limit: 10, cursor: bad });
      expect(reply.status, bad).toBe(400);
      expect((reply.json() as { message: string }).message).toMatch(/cursor/i);
    }
    expect((await list(sim, { start, end: T0 - MIN, limit: 10, cursor })).status).toBe(400);
    expect((await list(sim, { start: start + 1, end: T0, limit: 10, cursor })).status).toBe(400);

    const other = await startSimulator({
      seed: 4,
      now: clock.now,
      stackit: { scopes: [{ kind: 'project', id: PROJECT, eventsPerMinute: 20 }] },
    });
    try {
      expect((await list(other, { start, end: T0, limit: 10, cursor })).status).toBe(400);
    } finally {
      await other.close();
    }
  });

  it('a cursor for another scope of the same simulator is refused', async () => {
    sim.stackit.addScope({ kind: 'project', id: PROJECT_B, eventsPerMinute: 20 });
    const start = T0 - HOUR;
    const page = (await list(sim, { start, end: T0, limit: 10, id: PROJECT_B })).json() as PageBody;
    expect((await list(sim, { start, end: T0, limit: 10, cursor: page.cursor })).status).toBe(400);
    expect(sim.stackit.removeScope({ kind: 'project', id: PROJECT_B })).toBe(true);
    expect((await list(sim, { start, end: T0, id: PROJECT_B })).status).toBe(404);
  });
});

describe('STACKIT audit log: order, clock skew and traffic bounds', () => {
  it('serves descending order when configured, still complete', async () => {
    const clock = manualClock();
    const sim = await startSimulator({
      seed: 5,
      now: clock.now,
      stackit: { order: 'desc', scopes: [{ kind: 'project', id: PROJECT, eventsPerMinute: 25 }] },
    });
    try {
      const truth = sim.truth.events({ scope, fromMs: T0 - HOUR, toMs: T0, visibleBy: T0 });
      const { ids } = await pageAll(sim, { start: T0 - HOUR, end: T0, limit: 30 });
      expect(ids).toEqual(truth.map((e) => e.id).reverse());
    } finally {
      await sim.close();
    }
  });

  it('a skewed provider clock shifts retention and visibility', async () => {
    const clock = manualClock();
    const opts = (skewMs: number) => ({
      seed: 6,
      now: clock.now,
      skewMs,
      stackit: {
        scopes: [{ kind: 'project' as const, id: PROJECT, eventsPerMinute: 30 }],
        delay: { minMs: 60_000, maxMs: 600_000 },
      },
    });
    const ahead = await startSimulator(opts(10 * MIN));
    const behind = await startSimulator(opts(-10 * MIN));
    try {
      expect(ahead.clock.simNow()).toBe(T0 + 10 * MIN);
      // Retention: a start 89d23h55m before the client's now is still inside for a clock 10 min
      // behind, and outside for one 10 min ahead.
      const nearHorizon = { start: T0 - 90 * DAY + 5 * MIN, end: T0 - 89 * DAY };
      expect((await list(ahead, nearHorizon)).status).toBe(400);
      expect((await list(behind, nearHorizon)).status).toBe(200);

      // Visibility follows the provider's clock: same events, same window, different visible sets.
      const window = { start: T0 - 30 * MIN, end: T0, limit: 100 };
      const all = ahead.truth.events({ scope, fromMs: T0 - 30 * MIN, toMs: T0 });
      const seenAhead = (await pageAll(ahead, window)).ids;
      const seenBehind = (await pageAll(behind, window)).ids;
      expect(seenAhead).toEqual(all.filter((e) => e.visibleAtMs <= T0 + 10 * MIN).map((e) => e.id));
      expect(seenBehind).toEqual(all.filter((e) => e.visibleAtMs <= T0 - 10 * MIN).map((e) => e.id));
      expect(seenAhead.length).toBeGreaterThan(seenBehind.length);

      ahead.clock.skewMs = 0;
      expect((await list(ahead, nearHorizon)).status).toBe(200);
    } finally {
      await ahead.close();
      await behind.close();
    }
  });

  it('traffic bounds limit generation; stopTraffic ends it at the provider now', async () => {
    const clock = manualClock();
    const sim = await startSimulator({
      seed: 8,
      now: clock.now,
      stackit: {
        scopes: [{ kind: 'project', id: PROJECT, eventsPerMinute: 30 }],
        trafficStartMs: T0 - 20 * MIN,
      },
    });
    try {
      const truth = sim.truth.events({ scope, fromMs: T0 - HOUR, toMs: T0 + HOUR });
      expect(truth.length).toBeGreaterThan(0);
      expect(Math.min(...truth.map((e) => e.eventTimeMs))).toBeGreaterThanOrEqual(T0 - 20 * MIN);
      expect((await pageAll(sim, { start: T0 - HOUR, end: T0 - 20 * MIN })).ids).toEqual([]);

      sim.stopTraffic();
      clock.advance(30 * MIN);
      const after = sim.truth.events({ scope, fromMs: T0 - HOUR, toMs: T0 + HOUR });
      expect(Math.max(...after.map((e) => e.eventTimeMs))).toBeLessThan(T0);
      expect((await pageAll(sim, { start: T0 - HOUR, end: T0 + 20 * MIN, limit: 100 })).ids).toEqual(
        after.map((e) => e.id),
      );
    } finally {
      await sim.close();
    }
  });
});

describe('itemBytes helper', () => {
  it('splits nested, escaped and multibyte items', () => {
    const items = ['{"a":"x,]}\\"","b":[1,{"c":2}]}', '{"d":"é,ü"}'];
    const body = Buffer.from(`{"items":[${items.join(',')}],"limit":2}`);
    expect(itemBytes(body).map((b) => b.toString())).toEqual(items);
    expect(itemBytes(Buffer.from('{"items":[],"limit":5}'))).toEqual([]);
  });
});

describe('provider clock in headers and error timestamps', () => {
  it('Date header and ErrorResponse.timestamp follow the skewed provider clock', async () => {
    const clock = manualClock();
    const sim = await startSimulator({
      now: clock.now,
      skewMs: 90_000,
      stackit: { scopes: [{ kind: 'project', id: PROJECT, eventsPerMinute: 1 }] },
    });
    try {
      const ok = await list(sim, { start: T0 - HOUR, end: T0 });
      expect(Date.parse(ok.headers.get('date') ?? '')).toBe(T0 + 90_000);
      const bad = await list(sim, { start: T0, end: T0 - 1 });
      expect((bad.json() as { timestamp: string }).timestamp).toBe(new Date(T0 + 90_000).toISOString());
    } finally {
      await sim.close();
    }
  });
});
