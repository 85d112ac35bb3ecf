import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestRedis, type TestRedis } from '../../support/redis.ts';
import {
  entryOf,
  pageOf,
  type ScriptedServer,
  scriptedPoller,
  startScriptedServer,
} from '../../support/scripted-provider.ts';

/**
 * Issue 9 §6: an event older than the dedupe horizon that the API keeps returning (outside the window
 * it was asked for) was committed again on every poll.
 */
let redis: TestRedis;
let server: ScriptedServer;

beforeAll(async () => {
  redis = await startTestRedis();
  server = await startScriptedServer();
});
afterAll(async () => {
  await server.close();
  await redis.stop();
});
beforeEach(async () => {
  await redis.client.flushall();
});

const MIN = 60_000;

describe('STACKIT: an event returned outside the window a poll asked for', () => {
  it('is committed once, in its own window, then reported and never committed again', async () => {
    const t0 = Date.UTC(2026, 5, 1, 12);
    let now = t0;
    const old = entryOf('stackit', t0 - 5 * MIN, 'the same old event', 'ev-old');
    let fresh: Buffer[] = [];
    // A broken API: whatever window is asked for, it returns the old event (and what is new).
    server.respond = (_req, url) => pageOf('stackit', [old, ...fresh], url);
    const { poll, delivered, lines, metrics } = scriptedPoller('stackit', server, redis, () => now);

    expect(await poll()).toMatchObject({ outcome: 'completed', added: 1 });
    for (let i = 1; i <= 6; i++) {
      now = t0 + i * 10 * MIN; // each poll's window starts long after the old event's time
      fresh = [entryOf('stackit', now - 30_000, `new ${i}`, `ev-new-${i}`)];
      expect(await poll()).toMatchObject({ outcome: 'completed', added: 1 });
    }

    const ids = (await delivered()).map((l) => l.id);
    expect(ids.filter((id) => id === 'ev-old')).toHaveLength(1);
    expect(ids).toHaveLength(7);
    const warnings = lines().filter((l) =>
      String(l.msg).includes('dated before the window it was asked for'),
    );
    expect(warnings).toHaveLength(6);
    expect(warnings[0]).toMatchObject({
      level: 40,
      scope: 'stackit:project:0b1f3c2e-1234-4abc-8def-0123456789ab',
      provider: 'scripted',
      events: [{ id: 'ev-old', time: new Date(t0 - 5 * MIN).toISOString() }],
    });
    const counted = (await metrics.registry.getMetricsAsJSON()).find(
      (m) => m.name === 'auditlog_events_outside_range_total',
    );
    expect(counted?.values[0]?.value).toBe(6);
  });

  it('keeps events within a minute before the window (inclusive or rounded bounds) and dedupes them', async () => {
    const t0 = Date.UTC(2026, 5, 1, 12);
    let now = t0;
    // Inside the first window; the second window starts at t0 − 61 s, 29 s after it: within the
    // bounds' slack, and still in the seen-set, so it is a plain duplicate, not a report.
    const edge = entryOf('stackit', t0 - 90_000, 'at the edge', 'ev-edge');
    server.respond = (_req, url) => pageOf('stackit', [edge], url);
    const { poll, delivered, lines } = scriptedPoller('stackit', server, redis, () => now);
    expect(await poll()).toMatchObject({ outcome: 'completed', added: 1 });
    now = t0 + 20_000;
    expect(await poll()).toMatchObject({ outcome: 'completed', added: 0, duplicates: 1 });
    expect(await delivered()).toHaveLength(1);
    expect(lines().filter((l) => String(l.msg).includes('dated before the window'))).toEqual([]);
  });
});
