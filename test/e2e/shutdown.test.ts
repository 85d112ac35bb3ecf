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

describe('graceful shutdown', () => {
  it('SIGTERM mid-work exits 0 quickly, releases leases and consumers, and a restart loses nothing', async () => {
    scenario = await startScenario({
      projects: 3,
      eventsPerMinute: 600,
      historyMs: 3 * 60_000,
      // Slow pages keep polls in flight when the signal arrives.
      sim: { faults: { slowRate: 0.5, slowDelayMs: 300 } },
    });
    const s = scenario;
    const config = await s.config();
    const first = s.daemon(config);
    await new Promise((r) => setTimeout(r, 4_000));
    const signalled = Date.now();
    first.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    const tookMs = Date.now() - signalled;
    expect(tookMs).toBeLessThan(10_000); // shutdownTimeout in the scenario config
    const log = await first.logLines();
    expect(log.some((l) => l.msg === 'shutdown complete')).toBe(true);
    // Nothing is left claimed: leases released, delivery heartbeats removed.
    expect(await s.redis.client.keys('{auditlog}:scope:*:lease')).toEqual([]);
    expect(await s.redis.client.keys('{auditlog}:consumer:*')).toEqual([]);

    const second = s.daemon(config);
    await new Promise((r) => setTimeout(r, 3_000));
    s.sim.stopTraffic();
    const verdict = await s.settle(async () => [join(s.dir, 'events.ndjson')], 45_000);
    console.log(`graceful shutdown after ${tookMs} ms, then restart: ${summary(verdict)}`);
    expect(verdict.missing).toEqual([]);
    expect(verdict.duplicated).toEqual([]);
    expect(verdict.unexpected).toEqual([]);
    second.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  }, 90_000);

  it('exits 0 within the shutdown deadline even when Redis is gone', async () => {
    scenario = await startScenario({ projects: 2, eventsPerMinute: 120, historyMs: 60_000 });
    const s = scenario;
    const daemon = s.daemon(await s.config());
    await waitFor(
      'the daemon to run',
      async () => (await daemon.logLines()).some((l) => String(l.msg).startsWith('auditlog-shipper running')),
      15_000,
    );
    await s.redis.server.kill();
    await new Promise((r) => setTimeout(r, 1_000));
    const signalled = Date.now();
    daemon.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    // shutdownTimeout is 10s in the scenario config; commands queued for the lost Redis are abandoned.
    expect(Date.now() - signalled).toBeLessThan(12_000);
    expect((await daemon.logLines()).some((l) => l.msg === 'shutdown complete')).toBe(true);
  }, 60_000);
});
