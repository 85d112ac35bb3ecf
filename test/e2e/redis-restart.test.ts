import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { summary } from '../support/oracle.ts';
import { type Scenario, startScenario } from '../support/scenario.ts';

let scenario: Scenario | undefined;
afterEach(async () => {
  await scenario?.close();
  scenario = undefined;
});

describe('Redis restarts under a running daemon', () => {
  it('loses nothing when Redis is killed and restarted from its AOF, and the daemon carries on', async () => {
    scenario = await startScenario({ projects: 3, eventsPerMinute: 300, historyMs: 2 * 60_000 });
    const s = scenario;
    const daemon = s.daemon(await s.config());
    await new Promise((r) => setTimeout(r, 4_000));
    await s.redis.server.kill(); // SIGKILL: whatever the last second of AOF held may be gone
    await new Promise((r) => setTimeout(r, 1_500));
    await s.redis.server.restart();
    await new Promise((r) => setTimeout(r, 4_000));
    s.sim.stopTraffic();

    const verdict = await s.settle(async () => [join(s.dir, 'events.ndjson')], 45_000);
    console.log(`redis restart: ${summary(verdict)}`);
    expect(verdict.missing).toEqual([]);
    expect(verdict.unexpected).toEqual([]);
    expect(verdict.altered).toEqual([]);
    // Losing the AOF's last second can only cause re-reads and redeliveries, which dedupe absorbs.
    expect(verdict.duplicated).toEqual([]);
    daemon.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    // The outage was reported in JSON log lines, not as stray console output.
    expect(await daemon.strayLines()).toEqual([]);
    const errors = (await daemon.logLines()).filter((l) => l.level === 'error');
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.length).toBeLessThan(30);
  }, 90_000);
});
