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

describe('Redis restarts under a running daemon', () => {
  it('loses nothing when Redis is killed and restarted from its AOF, and the daemon carries on', async () => {
    scenario = await startScenario({ projects: 3, eventsPerMinute: 300, historyMs: 2 * 60_000 });
    const s = scenario;
    const sinkFile = join(s.dir, 'events.ndjson');
    const daemon = s.daemon(await s.config());
    const logged = async (text: string): Promise<boolean> =>
      (await daemon.logLines()).some((l) => String(l.msg).startsWith(text));
    // Each step waits for the daemon to reach the state the next one needs, not for a guessed time.
    await waitFor(
      'events in the sink',
      async () => (await readSinkFiles([sinkFile]).catch(() => [])).length > 0,
      60_000,
    );
    await s.redis.server.kill(); // SIGKILL: whatever the last second of AOF held may be gone
    await waitFor('the daemon to see Redis gone', () => logged('lost the redis connection (main)'), 60_000);
    await s.redis.server.restart();
    await waitFor('the daemon to reconnect', () => logged('redis connection (main) is back'), 60_000);
    s.sim.stopTraffic();

    const verdict = await s.settle(async () => [sinkFile], 45_000);
    console.log(`redis restart: ${summary(verdict)}`);
    expect(verdict.missing).toEqual([]);
    expect(verdict.unexpected).toEqual([]);
    expect(verdict.altered).toEqual([]);
    // Losing the AOF's last second can only cause re-reads and redeliveries, which dedupe absorbs.
    expect(verdict.duplicated).toEqual([]);
    daemon.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    // The outage was reported in JSON log lines (lost, then back), not as stray console output.
    expect(await daemon.strayLines()).toEqual([]);
    const lines = await daemon.logLines();
    expect(
      lines.filter((l) => l.level === 'warn' && String(l.msg).startsWith('lost the redis connection (main)')),
    ).toHaveLength(1);
  }, 300_000);
});
