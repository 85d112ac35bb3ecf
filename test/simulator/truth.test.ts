import { describe, expect, it } from 'vitest';
import { makeScopeIds, type SimulatorOptions, startSimulator } from '../../src/simulator/index.ts';
import { DAY, FOLDER, HOUR, MIN, manualClock, PROJECT, pageAll, T0 } from './helpers.ts';

const ORG = '3e9d1c2b-8a7f-4e6d-9c5b-4a3f2e1d0c9b';

function options(seed: number, now: () => number): SimulatorOptions {
  return {
    seed,
    now,
    stackit: {
      scopes: [
        { kind: 'project', id: PROJECT, eventsPerMinute: 12 },
        { kind: 'folder', id: FOLDER, eventsPerMinute: 3 },
        { kind: 'organization', id: ORG, eventsPerMinute: 2 },
      ],
      delay: { minMs: 1_000, maxMs: 8_000, lateFraction: 0.05, lateMaxMs: 120_000 },
    },
  };
}

describe('determinism and ground truth', () => {
  it('the same seed gives identical truth; another seed differs', async () => {
    const clock = manualClock();
    const a = await startSimulator(options(7, clock.now));
    const b = await startSimulator(options(7, clock.now));
    const c = await startSimulator(options(8, clock.now));
    try {
      for (const scope of a.truth.scopes()) {
        const q = { scope, fromMs: T0 - 3 * HOUR, toMs: T0 };
        const ta = a.truth.events(q);
        expect(ta.length).toBeGreaterThan(0);
        expect(b.truth.events(q)).toEqual(ta);
        const tc = c.truth.events(q);
        const idsA = new Set(ta.map((e) => e.id));
        expect(tc.filter((e) => idsA.has(e.id))).toEqual([]);
        expect(tc.map((e) => e.raw)).not.toEqual(ta.map((e) => e.raw));
      }
      // Also through the API, including cursors (same seed: same cursor secret).
      const window = { start: T0 - HOUR, end: T0, limit: 25 };
      const pa = await pageAll(a, window);
      const pb = await pageAll(b, window);
      expect(pb.raws).toEqual(pa.raws);
      expect(pb.pages.map((p) => p.cursor)).toEqual(pa.pages.map((p) => p.cursor));
    } finally {
      await Promise.all([a.close(), b.close(), c.close()]);
    }
  });

  it('history is lazy: a 10,000-scope simulator serves 90-day-old buckets without storing events', async () => {
    const clock = manualClock();
    const ids = makeScopeIds(3, 10_000);
    const before = process.memoryUsage().heapUsed;
    const sim = await startSimulator({
      seed: 3,
      now: clock.now,
      cacheEvents: 5_000,
      stackit: { scopes: ids.map((id) => ({ kind: 'project' as const, id, eventsPerMinute: 30 })) },
    });
    try {
      expect(sim.truth.scopes()).toHaveLength(10_000);
      const old = { fromMs: T0 - 90 * DAY + 10 * MIN, toMs: T0 - 90 * DAY + 20 * MIN };
      let total = 0;
      for (const id of ids.slice(0, 200))
        total += sim.truth.count({ scope: { kind: 'project', id }, ...old });
      expect(total).toBeGreaterThan(200 * 10 * 30 * 0.8);
      const last = ids.at(-1)!;
      const window = { start: old.fromMs, end: old.toMs, limit: 100, id: last };
      const { ids: got } = await pageAll(sim, window);
      expect(got).toEqual(
        sim.truth.events({ scope: { kind: 'project', id: last }, ...old }).map((e) => e.id),
      );
      expect(process.memoryUsage().heapUsed - before).toBeLessThan(150 * 1024 * 1024);
    } finally {
      await sim.close();
    }
  });

  it('truth filters on [fromMs, toMs) and visibleBy, and defaults to the retention window', async () => {
    const clock = manualClock();
    const sim = await startSimulator(options(9, clock.now));
    try {
      const scope = { kind: 'project', id: PROJECT };
      const all = sim.truth.events({ scope, fromMs: T0 - HOUR, toMs: T0 });
      const mid = all[Math.floor(all.length / 2)]!;
      const lower = sim.truth.events({ scope, fromMs: T0 - HOUR, toMs: mid.eventTimeMs });
      const upper = sim.truth.events({ scope, fromMs: mid.eventTimeMs, toMs: T0 });
      expect([...lower, ...upper]).toEqual(all);
      expect(lower.every((e) => e.eventTimeMs < mid.eventTimeMs)).toBe(true);
      expect(upper.every((e) => e.eventTimeMs >= mid.eventTimeMs)).toBe(true);

      const visible = sim.truth.events({ scope, fromMs: T0 - HOUR, toMs: T0, visibleBy: T0 - 30 * MIN });
      expect(visible).toEqual(all.filter((e) => e.visibleAtMs <= T0 - 30 * MIN));
      for (const e of all) {
        expect(e.scope).toEqual(scope);
        expect(e.visibleAtMs).toBeGreaterThanOrEqual(e.eventTimeMs + 1_000);
        expect(e.visibleAtMs).toBeLessThanOrEqual(e.eventTimeMs + 120_000);
        expect(Date.parse(e.receivedTimeText)).toBeGreaterThanOrEqual(e.eventTimeMs);
      }

      const recent = sim.truth.count({ scope, fromMs: T0 - HOUR });
      expect(recent).toBe(sim.truth.count({ scope, fromMs: T0 - HOUR, toMs: T0 + 1 }));
      expect(() => sim.truth.events({ scope: { kind: 'project', id: ORG } })).toThrow(/serves no scope/);
    } finally {
      await sim.close();
    }
  });

  it('GET /_sim/truth streams the same events as NDJSON; /_sim/scopes lists them', async () => {
    const clock = manualClock();
    const sim = await startSimulator(options(10, clock.now));
    try {
      const q = { scope: { kind: 'project', id: PROJECT }, fromMs: T0 - 2 * HOUR, toMs: T0, visibleBy: T0 };
      const expected = sim.truth.events(q);
      const res = await fetch(
        `${sim.url}/_sim/truth?kind=project&id=${PROJECT}&from=${q.fromMs}&to=${q.toMs}&visibleBy=${q.visibleBy}`,
      );
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/x-ndjson');
      const lines = (await res.text()).split('\n').filter((l) => l !== '');
      expect(lines.map((l) => JSON.parse(l))).toEqual(expected);

      const scopes = (await (await fetch(`${sim.url}/_sim/scopes`)).json()) as unknown[];
      expect(scopes).toEqual(sim.truth.scopes());
      expect(scopes).toHaveLength(3);
      expect((await fetch(`${sim.url}/_sim/truth?kind=project&id=${ORG}`)).status).toBe(404);
      expect((await fetch(`${sim.url}/_sim/truth?kind=project&id=${PROJECT}&from=soon`)).status).toBe(400);
    } finally {
      await sim.close();
    }
  });

  it('makeScopeIds is deterministic, distinct per seed and kind, and UUID-shaped', () => {
    const a = makeScopeIds(1, 50);
    expect(makeScopeIds(1, 50)).toEqual(a);
    expect(new Set(a).size).toBe(50);
    for (const id of a)
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(makeScopeIds(2, 50).some((id) => a.includes(id))).toBe(false);
    expect(makeScopeIds(1, 5, 'folder').some((id) => a.includes(id))).toBe(false);
    expect(makeScopeIds(1, 10)).toEqual(a.slice(0, 10));
  });
});
