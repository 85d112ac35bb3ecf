import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../support/daemon.ts';
import { summary } from '../support/oracle.ts';
import { type Scenario, startScenario } from '../support/scenario.ts';

let scenario: Scenario | undefined;
afterEach(async () => {
  await scenario?.close();
  scenario = undefined;
});

describe('end to end, judged by the simulator’s ground truth', () => {
  it('delivers every visible event exactly once and unaltered, through late arrivals, 429s and 5xx', async () => {
    scenario = await startScenario({
      projects: 4,
      eventsPerMinute: 120,
      historyMs: 5 * 60_000,
      // Late arrivals up to 8 s, within the 20 s overlap; 10% server errors; a budget of 3 requests a
      // second against 4 scopes polled every second, so 429s come in steady state too, not only when a
      // fast catch-up happens to burst (a loaded machine may never burst).
      sim: { faults: { serverErrorRate: 0.1 }, budget: { capacity: 4, refillPerSecond: 3 } },
    });
    const s = scenario;
    const daemon = s.daemon(await s.config());
    const statuses = (): Record<string, number> => s.sim.stats().byStatus as Record<string, number>;
    const serverErrors = (): number =>
      (statuses()['500'] ?? 0) +
      (statuses()['502'] ?? 0) +
      (statuses()['503'] ?? 0) +
      (statuses()['504'] ?? 0);
    // Traffic runs until the daemon has met both faults the test is about, however long that takes here.
    await waitFor(
      'a 429 and a 5xx answered to the daemon',
      () => (statuses()['429'] ?? 0) > 0 && serverErrors() > 0,
      60_000,
    );
    s.sim.stopTraffic();
    const verdict = await s.settle(async () => [join(s.dir, 'events.ndjson')], 45_000);
    console.log(`oracle: ${summary(verdict)}; simulator answered ${JSON.stringify(s.sim.stats().byStatus)}`);
    expect(verdict.expected).toBeGreaterThan(2_000);
    expect(verdict.missing).toEqual([]);
    expect(verdict.duplicated).toEqual([]);
    expect(verdict.unexpected).toEqual([]);
    expect(verdict.altered).toEqual([]);

    daemon.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    // The bearer token was used on every request and must appear in no log line.
    const log = (await daemon.logLines()).map((l) => JSON.stringify(l)).join('\n');
    expect(log).toContain('shutdown complete');
    expect(log).not.toContain(s.sim.token);
  }, 300_000);
});
