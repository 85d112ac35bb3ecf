import { afterEach, describe, expect, it } from 'vitest';
import { type Simulator, type SimulatorOptions, startSimulator } from '../../../src/simulator/index.ts';
import { arrayElementSpans } from '../../../src/sources/json-spans.ts';
import { MIN, manualClock, T0 } from '../helpers.ts';

interface Page {
  next: string | null;
  poll_more: string;
  results: Array<Record<string, unknown>>;
}

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: () => unknown;
}

let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const clock = manualClock();
const TOKEN_A = 'tok-alpha';
const TOKEN_B = 'tok-beta';

async function start(cloudscale: SimulatorOptions['cloudscale'] = {}, extra: Partial<SimulatorOptions> = {}) {
  clock.set(T0);
  sim = await startSimulator({
    seed: 5,
    now: clock.now,
    ...extra,
    cloudscale: {
      projects: [
        { name: 'alpha', token: TOKEN_A, eventsPerMinute: 60 },
        { name: 'beta', token: TOKEN_B, eventsPerMinute: 6 },
      ],
      trafficStartMs: T0 - 30 * MIN,
      ...cloudscale,
    },
  });
  return sim;
}

async function get(url: string, token: string | null = TOKEN_A): Promise<Reply> {
  const response = await fetch(url, token === null ? {} : { headers: { authorization: `Bearer ${token}` } });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: () => JSON.parse(text) };
}

const startUrl = (s: Simulator, startMs: number) =>
  `${s.url}/v1/project-logs?start=${encodeURIComponent(new Date(startMs).toISOString())}`;

/** The raw text of each entry of a page body, in order (the body is assembled from these bytes). */
function rawEntries(text: string): string[] {
  return (arrayElementSpans(text, 'results') ?? []).map(([from, to]) => text.slice(from, to));
}

/** Follows `next` from `url` to the end; returns every raw entry and the final poll_more. */
async function readAll(
  url: string,
  token = TOKEN_A,
): Promise<{ raws: string[]; pollMore: string; pages: Page[] }> {
  const raws: string[] = [];
  const pages: Page[] = [];
  for (let next: string | null = url; ; ) {
    const reply = await get(next, token);
    expect(reply.status, reply.text).toBe(200);
    const page = reply.json() as Page;
    pages.push(page);
    raws.push(...rawEntries(reply.text));
    if (page.next === null) return { raws, pollMore: page.poll_more, pages };
    next = page.next;
  }
}

describe('cloudscale project logs: requests', () => {
  it('401 without or with an unknown token, in Django REST framework’s words', async () => {
    const s = await start();
    const none = await get(`${s.url}/v1/project-logs`, null);
    expect(none.status).toBe(401);
    expect(none.json()).toEqual({ detail: 'Authentication credentials were not provided.' });
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="api"');
    const wrong = await get(`${s.url}/v1/project-logs`, 'nope');
    expect(wrong.json()).toEqual({ detail: 'Invalid token.' });
  });

  it('the token decides the project', async () => {
    const s = await start();
    const alpha = await readAll(startUrl(s, T0 - 60 * MIN), TOKEN_A);
    const beta = await readAll(startUrl(s, T0 - 60 * MIN), TOKEN_B);
    expect(alpha.raws).toEqual(s.cloudscale.truth({ project: 'alpha' }).map((e) => e.raw));
    expect(beta.raws).toEqual(s.cloudscale.truth({ project: 'beta' }).map((e) => e.raw));
    expect(alpha.raws.length).toBeGreaterThan(5 * beta.raws.length);
    const alphaRaws = new Set(alpha.raws);
    expect(beta.raws.filter((raw) => alphaRaws.has(raw))).toEqual([]);
  });

  it('takes start as ISO 8601 with Z or an encoded +00:00; an unencoded + is refused', async () => {
    const s = await start();
    const from = T0 - 10 * MIN;
    const base = `${s.url}/v1/project-logs?start=`;
    const zulu = await readAll(`${base}${new Date(from).toISOString()}`);
    const offset = await readAll(`${base}${encodeURIComponent('2025-06-01T13:50:00+02:00')}`);
    expect(offset.raws).toEqual(zulu.raws);
    expect(zulu.raws).toEqual(s.cloudscale.truth({ project: 'alpha', fromMs: from }).map((e) => e.raw));
    for (const entry of zulu.pages.flatMap((p) => p.results)) {
      expect(Date.parse(entry.timestamp as string)).toBeGreaterThanOrEqual(from);
    }
    const raw = await get(`${base}2025-06-01T11:50:00+00:00`);
    expect(raw.status).toBe(400);
    expect(raw.json()).toEqual({ start: ['Enter a valid date/time.'] });
  });

  it('end bounds timestamps (exclusive); a malformed cursor is an invalid one', async () => {
    const s = await start();
    const end = T0 - 20 * MIN;
    const { pages } = await readAll(
      `${startUrl(s, T0 - 60 * MIN)}&end=${encodeURIComponent(new Date(end).toISOString())}`,
    );
    const times = pages.flatMap((p) => p.results).map((e) => Date.parse(e.timestamp as string));
    expect(times.length).toBeGreaterThan(0);
    expect(Math.max(...times)).toBeLessThan(end);
    const bad = await get(`${s.url}/v1/project-logs?cursor=abc`);
    expect(bad.status).toBe(404);
    expect(bad.json()).toEqual({ detail: 'Invalid cursor' });
  });
});

describe('cloudscale project logs: pages and cursors', () => {
  it('pages of at most 200 in primary-key order; next until null; poll_more always', async () => {
    const s = await start({ projects: [{ name: 'alpha', token: TOKEN_A, eventsPerMinute: 40 }] });
    const { raws, pages, pollMore } = await readAll(startUrl(s, T0 - 60 * MIN));
    const truth = s.cloudscale.truth({ project: 'alpha' });
    expect(truth.length).toBeGreaterThan(1000);
    expect(raws).toEqual(truth.map((e) => e.raw));
    expect(
      pages
        .map((p) => p.results.length)
        .slice(0, -1)
        .every((n) => n === 200),
    ).toBe(true);
    expect(pages.at(-1)?.results.length).toBeLessThanOrEqual(200);
    for (const page of pages.slice(0, -1)) expect(page.poll_more).toBe(page.next);
    // The links repeat the query with the last returned primary key as the cursor.
    const link = new URL(pages[0]?.next as string);
    expect(link.origin).toBe(s.url);
    expect(link.searchParams.get('start')).toBe(new Date(T0 - 60 * MIN).toISOString());
    expect(link.searchParams.get('cursor')).toBe(String(truth[199]?.id));
    expect(new URL(pollMore).searchParams.get('cursor')).toBe(String(truth.at(-1)?.id));

    // Nothing new yet; later, exactly what was inserted and committed since.
    expect((await get(pollMore)).json()).toMatchObject({ next: null, results: [], poll_more: pollMore });
    clock.advance(2 * MIN);
    const later = await readAll(pollMore);
    const fresh = s.cloudscale.truth({ project: 'alpha' }).slice(truth.length);
    expect(fresh.length).toBeGreaterThan(30);
    expect(later.raws).toEqual(fresh.map((e) => e.raw));
  });

  it('holds back entries behind one that commits late, and returns it through poll_more', async () => {
    const s = await start({
      projects: [{ name: 'alpha', token: TOKEN_A, eventsPerMinute: 120 }],
      commit: { minMs: 0, maxMs: 100, lateFraction: 0.05, lateMaxMs: 20_000 },
      backdate: { fraction: 0.1, maxMs: 30_000 },
    });
    const delivered: string[] = [];
    let url = startUrl(s, T0 - 60 * MIN);
    let lastTimestampMs = 0;
    let missedByTimestamp = 0;
    for (let step = 0; step < 40; step++) {
      const { raws, pages, pollMore } = await readAll(url);
      const horizon = s.cloudscale.log.horizonId(clock.now());
      // Nothing beyond the horizon is ever shown, however committed it is.
      for (const page of pages)
        expect(Number(new URL(page.poll_more).searchParams.get('cursor'))).toBeLessThanOrEqual(horizon);
      for (const entry of pages.flatMap((p) => p.results)) {
        // A client that polled by timestamp would have asked from its newest timestamp on.
        if (Date.parse(entry.timestamp as string) < lastTimestampMs) missedByTimestamp++;
        lastTimestampMs = Math.max(lastTimestampMs, Date.parse(entry.timestamp as string));
      }
      delivered.push(...raws);
      url = pollMore;
      clock.advance(1_000);
    }
    s.cloudscale.stopTraffic();
    clock.advance(30_000);
    const { raws } = await readAll(url);
    delivered.push(...raws);

    const truth = s.cloudscale.truth({ project: 'alpha' });
    expect(delivered).toEqual(truth.map((e) => e.raw));
    // Late commits really overtook: some row committed after a row with a larger id.
    const overtaken = truth.filter((e, i) =>
      truth.slice(i + 1).some((later) => later.committedAtMs < e.committedAtMs),
    );
    expect(overtaken.length).toBeGreaterThan(0);
    for (const e of truth) expect(e.visibleAtMs).toBeGreaterThanOrEqual(e.committedAtMs);
    expect(missedByTimestamp).toBeGreaterThan(0);
  });

  it('logs byte-identical twins under consecutive ids', async () => {
    const s = await start({ twinFraction: 0.2 });
    const truth = s.cloudscale.truth({ project: 'alpha' });
    const twins = truth.filter((e) => e.twinOf !== null);
    expect(twins.length).toBeGreaterThan(5);
    for (const twin of twins) {
      const original = truth.find((e) => e.id === twin.twinOf);
      expect(original?.raw).toBe(twin.raw);
      expect(twin.id).toBe((original?.id ?? 0) + 1);
    }
    expect((await readAll(startUrl(s, T0 - 60 * MIN))).raws).toEqual(truth.map((e) => e.raw));
  });

  it('is deterministic from the seed', async () => {
    const first = (await start()).cloudscale.truth({ project: 'alpha' }).map((e) => [e.id, e.raw]);
    await sim?.close();
    const again = (await start()).cloudscale.truth({ project: 'alpha' }).map((e) => [e.id, e.raw]);
    expect(again).toEqual(first);
    await sim?.close();
    sim = await startSimulator({
      seed: 6,
      now: clock.now,
      cloudscale: {
        projects: [{ name: 'alpha', token: TOKEN_A, eventsPerMinute: 60 }],
        trafficStartMs: T0 - 30 * MIN,
      },
    });
    expect(sim.cloudscale.truth({ project: 'alpha' }).map((e) => e.raw)).not.toEqual(first.map((e) => e[1]));
  });

  it('forgets entries older than the retention', async () => {
    const s = await start({ retentionMs: 10 * MIN });
    const { pages } = await readAll(startUrl(s, T0 - 60 * MIN));
    const times = pages.flatMap((p) => p.results).map((e) => Date.parse(e.timestamp as string));
    expect(Math.min(...times)).toBeGreaterThanOrEqual(T0 - 10 * MIN);
  });
});

describe('cloudscale project logs: maintenance, refused cursors, foreign links, faults', () => {
  it('answers 503 with Retry-After during maintenance (also via PUT /_sim/cloudscale/maintenance)', async () => {
    const s = await start();
    const put = await fetch(`${s.url}/_sim/cloudscale/maintenance`, {
      method: 'PUT',
      body: JSON.stringify({ untilMs: T0 + MIN, retryAfterSec: 7 }),
    });
    expect(put.status).toBe(200);
    const reply = await get(startUrl(s, T0 - MIN));
    expect(reply.status).toBe(503);
    expect(reply.headers.get('retry-after')).toBe('7');
    expect(reply.json()).toEqual({ detail: 'Service temporarily unavailable, try again later.' });
    clock.advance(MIN);
    expect((await get(startUrl(s, T0 - MIN))).status).toBe(200);
  });

  it('refuses the next cursors it is told to, and only requests with a cursor', async () => {
    const s = await start();
    const { pollMore } = await readAll(startUrl(s, T0 - 60 * MIN));
    s.cloudscale.rejectCursors(1, 410);
    expect((await get(startUrl(s, T0 - MIN))).status).toBe(200);
    const refused = await get(pollMore);
    expect(refused.status).toBe(410);
    expect(refused.json()).toEqual({ detail: 'Invalid cursor' });
    expect((await get(pollMore)).status).toBe(200);
  });

  it('can put next and poll_more on a foreign origin', async () => {
    const s = await start();
    await fetch(`${s.url}/_sim/cloudscale/links`, {
      method: 'PUT',
      body: '{"origin":"http://127.0.0.1:9/x"}',
    });
    const page = (await get(startUrl(s, T0 - 60 * MIN))).json() as Page;
    expect(new URL(page.next as string).origin).toBe('http://127.0.0.1:9');
    expect(new URL(page.poll_more).pathname).toBe('/v1/project-logs');
    expect(new URL(page.poll_more).searchParams.get('cursor')).toMatch(/^\d+$/);
  });

  it('injects the shared faults in cloudscale’s shapes, and throttles with its body', async () => {
    const s = await start({}, { budget: { capacity: 100, refillPerSecond: 1 } });
    const url = startUrl(s, T0 - 60 * MIN);
    s.faults.enqueue(
      { type: 'status', status: 503, retryAfterSec: 2 },
      { type: 'malformed', kind: 'item-wrong-types' },
      { type: 'repeat-cursor' },
      { type: 'malformed', kind: 'cursor-wrong-type' },
    );
    const unavailable = await get(url);
    expect(unavailable.status).toBe(503);
    expect(unavailable.headers.get('retry-after')).toBe('2');
    const wrongTypes = (await get(url)).json() as Page;
    expect(typeof wrongTypes.results[0]?.timestamp).toBe('number');
    const loop = (await get(url)).json() as Page;
    expect(loop.next).toBe(url);
    expect(((await get(url)).json() as Page).poll_more).toBe(42);

    s.budget.set({ capacity: 1, refillPerSecond: 0.5 });
    expect((await get(url)).status).toBe(200);
    const throttled = await get(url);
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get('retry-after')).toBe('2');
    expect(throttled.json()).toEqual({ detail: 'Request was throttled. Expected available in 2 seconds.' });
  });

  it('serves its truth as NDJSON and logs requests per project', async () => {
    const s = await start();
    await get(startUrl(s, T0 - MIN), TOKEN_B);
    const ndjson = await (await fetch(`${s.url}/_sim/cloudscale/truth?project=beta`)).text();
    const lines = ndjson
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { raw: string });
    expect(lines.map((l) => l.raw)).toEqual(s.cloudscale.truth({ project: 'beta' }).map((e) => e.raw));
    expect(s.requestLog.at(-1)).toMatchObject({
      route: 'cloudscale.project-logs',
      scope: { kind: 'project', id: 'beta' },
      status: 200,
      cursorPresent: false,
    });
  });
});
