import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../support/daemon.ts';
import { readSinkFiles, summary } from '../support/oracle.ts';
import { type Scenario, startScenario } from '../support/scenario.ts';

let scenario: Scenario | undefined;
afterEach(async () => {
  await scenario?.close();
  scenario = undefined;
});

describe('graceful shutdown', () => {
  it('SIGTERM mid-work exits 0, releases leases and consumers, and a restart loses nothing', async () => {
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
    // Mid-work, whatever the machine's speed: running, and events already on their way to the sink.
    await waitFor(
      'the first events in the sink',
      async () => (await readSinkFiles([join(s.dir, 'events.ndjson')]).catch(() => [])).length > 0,
      60_000,
    );
    first.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    const log = await first.logLines();
    expect(log.some((l) => l.msg === 'shutdown complete')).toBe(true);
    // Nothing is left claimed: leases released, delivery heartbeats removed (so the steps finished, not
    // merely ran out of time; how long they took is for the benchmarks, not for a test).
    expect(await s.redis.client.keys('{auditlog}:scope:*:lease')).toEqual([]);
    expect(await s.redis.client.keys('{auditlog}:consumer:*')).toEqual([]);

    s.daemon(config);
    s.sim.stopTraffic();
    const verdict = await s.settle(async () => [join(s.dir, 'events.ndjson')], 45_000);
    console.log(`graceful shutdown, then restart: ${summary(verdict)}`);
    expect(verdict.missing).toEqual([]);
    expect(verdict.duplicated).toEqual([]);
    expect(verdict.unexpected).toEqual([]);
  }, 300_000);

  it('exits 0, abandoning what waits for Redis, when Redis is gone', async () => {
    scenario = await startScenario({ projects: 2, eventsPerMinute: 120, historyMs: 60_000 });
    const s = scenario;
    const daemon = s.daemon(await s.config());
    await waitFor(
      'the daemon to run',
      async () => (await daemon.logLines()).some((l) => String(l.msg).startsWith('auditlog-shipper running')),
      15_000,
    );
    await s.redis.server.kill();
    await waitFor(
      'the daemon to see Redis gone',
      async () =>
        (await daemon.logLines()).some((l) => String(l.msg).startsWith('lost the redis connection')),
      60_000,
    );
    daemon.kill('SIGTERM');
    // Commands queued for the lost Redis are abandoned at the shutdown deadline (10 s in the scenario
    // config) instead of waiting forever; the test's own timeout is the hang detector.
    expect(await daemon.exited).toBe(0);
    expect((await daemon.logLines()).some((l) => l.msg === 'shutdown complete')).toBe(true);
  }, 300_000);
});
