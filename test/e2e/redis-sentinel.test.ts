import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../support/daemon.ts';
import { readSinkFiles, summary } from '../support/oracle.ts';
import { type SentinelGroup, startSentinelGroup } from '../support/redis-ha.ts';
import { type Scenario, startScenario } from '../support/scenario.ts';

let scenario: Scenario | undefined;
let group: SentinelGroup | undefined;
afterEach(async () => {
  await scenario?.close();
  await group?.stop();
  scenario = undefined;
  group = undefined;
});

describe('Redis Sentinel (one master, one replica, three sentinels)', () => {
  it('carries on through a forced failover: nothing lost, nothing duplicated at the file sink', async () => {
    group = await startSentinelGroup();
    scenario = await startScenario({ projects: 3, eventsPerMinute: 300, historyMs: 2 * 60_000 });
    const s = scenario;
    const sink = join(s.dir, 'events.ndjson');
    const daemon = s.daemon(await s.config({ redisUrl: group.url }));

    // Mid-run: some events have reached the sink, the rest are still being polled and delivered.
    await waitFor(
      'the first events in the sink',
      async () => (await readSinkFiles([sink])).length > 50,
      30_000,
    );
    const { from, to } = await group.failover();
    expect(to).not.toBe(from);
    await waitFor(
      'the daemon to write to the new master',
      async () => (await readSinkFiles([sink])).length > 0 && (await group?.masterPort()) === to,
      30_000,
    );
    s.sim.stopTraffic();

    const verdict = await s.settle(async () => [sink], 45_000);
    console.log(`sentinel failover: ${summary(verdict)}`);
    expect(verdict.missing).toEqual([]);
    expect(verdict.unexpected).toEqual([]);
    expect(verdict.altered).toEqual([]);
    // Writes the old master took after the promotion are gone with it: re-reads and redeliveries, absorbed.
    expect(verdict.duplicated).toEqual([]);
    daemon.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    expect(await daemon.strayLines()).toEqual([]);
  }, 120_000);
});
