import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { summary } from '../support/oracle.ts';
import { type Scenario, startScenario } from '../support/scenario.ts';

let scenario: Scenario | undefined;
afterEach(async () => {
  await scenario?.close();
  scenario = undefined;
});

describe('request budget end to end', () => {
  it('keeps two daemons together within the budget through a 429 storm, pauses both on Retry-After, and loses nothing', async () => {
    scenario = await startScenario({
      projects: 4,
      eventsPerMinute: 120,
      historyMs: 2 * 60_000,
      delay: { minMs: 100, maxMs: 1_000, lateFraction: 0.1, lateMaxMs: 2_000 },
      // The provider allows 2 requests a second (burst 2) per credential; the daemons' budget is 3 a
      // second, so the provider keeps answering 429 with Retry-After.
      sim: { budget: { capacity: 2, refillPerSecond: 2 } },
    });
    const s = scenario;
    const rate = { requestsPerMinute: 180, burst: 3 };
    const config = await s.config({ rateLimit: rate, sinkPath: join(s.dir, 'events-{instance}.ndjson') });
    const a = s.daemon(config, { INSTANCE_ID: 'replica-a' });
    const b = s.daemon(config, { INSTANCE_ID: 'replica-b' });
    await new Promise((r) => setTimeout(r, 9_000));
    s.sim.stopTraffic();
    const files = async (): Promise<string[]> =>
      (await readdir(s.dir)).filter((f) => f.startsWith('events-')).map((f) => join(s.dir, f));
    const verdict = await s.settle(files, 60_000);
    a.kill('SIGTERM');
    b.kill('SIGTERM');
    expect([await a.exited, await b.exited]).toEqual([0, 0]);

    const requests = s.sim.requestLog.filter((r) => r.route === 'stackit.audit-log');
    const statuses = s.sim.stats().byStatus as Record<string, number>;
    const instances = new Set(requests.map((r) => r.instance));
    console.log(
      `rate budget e2e: ${summary(verdict)}; ${requests.length} requests, 429s ${statuses['429'] ?? 0}, instances ${[...instances].join(', ')}`,
    );
    expect(verdict.missing).toEqual([]);
    expect(verdict.duplicated).toEqual([]);
    expect(verdict.unexpected).toEqual([]);
    expect(verdict.altered).toEqual([]);
    expect(instances).toEqual(new Set(['replica-a', 'replica-b']));
    expect(statuses['429'] ?? 0).toBeGreaterThan(0);

    // Both daemons together stay within the budget: in any 5 s, at most burst + 5 s of refill.
    const starts = requests.map((r) => r.startedAtMs).sort((x, y) => x - y);
    let worst = 0;
    for (const t of starts) worst = Math.max(worst, starts.filter((u) => u >= t && u < t + 5_000).length);

    // After a 429, neither daemon sends anything until its Retry-After has passed (requests already
    // on the way when the 429 was sent do not count).
    const violations: string[] = [];
    for (const limited of requests.filter((r) => r.status === 429)) {
      const pauseEnds = limited.endedAtMs + 1_000; // the simulator's Retry-After is at least 1 s
      for (const r of requests) {
        if (r.startedAtMs > limited.endedAtMs + 100 && r.startedAtMs < pauseEnds - 100) {
          violations.push(
            `${r.instance} at +${r.startedAtMs - limited.endedAtMs} ms after a 429 to ${limited.instance}`,
          );
        }
      }
    }
    console.log(
      `rate budget e2e: busiest 5 s held ${worst} requests; ${violations.length} sent during a pause`,
    );
    expect(worst).toBeLessThanOrEqual(rate.burst + (rate.requestsPerMinute / 60) * 5 + 1);
    expect(violations).toEqual([]);
  }, 120_000);
});
