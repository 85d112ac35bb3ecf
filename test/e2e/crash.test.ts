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

const KILLS = Number(process.env.CRASH_KILLS ?? 20);

async function committedEvents(s: Scenario): Promise<number> {
  let total = 0;
  for (const id of s.projects) {
    total += Number(
      (await s.redis.client.hget(`{auditlog}:scope:stackit:project:${id}:checkpoint`, 'committed')) ?? 0,
    );
  }
  return total;
}

describe('crash safety', () => {
  it(`loses nothing when the daemon is killed -9 at random moments (${KILLS} times)`, async () => {
    scenario = await startScenario({
      projects: 3,
      eventsPerMinute: 600,
      historyMs: 3 * 60_000,
      sim: { faults: { serverErrorRate: 0.05, slowRate: 0.1, slowDelayMs: 150 } },
    });
    const s = scenario;
    const config = await s.config({ lookback: '5m', leaseTtl: '1500ms' });
    const seed = Number(process.env.CRASH_SEED ?? Date.now() % 100_000);
    let state = seed;
    const random = (): number => {
      state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
      return state / 2 ** 31;
    };
    console.log(`crash test: seed ${seed} (replay with CRASH_SEED=${seed})`);

    const sinkFile = join(s.dir, 'events.ndjson');
    const outbox = '{auditlog}:outbox:archive';
    let killsWithPending = 0;
    let linesBefore = 0;
    let committedBefore = 0;
    let killsAfterDelivery = 0;
    let killsAfterCommit = 0;
    let workingKills = 0;
    for (let i = 0; i < KILLS; i++) {
      const daemon = s.daemon(config);
      if (i % 5 === 0) {
        // During start-up: connecting, adopting state, creating consumer groups.
        await new Promise((r) => setTimeout(r, random() * 800));
      } else {
        // In the middle of steady work: polls, commits, deliveries. The schedule itself guarantees the
        // kill lands in a working daemon: it waits for this daemon's first new commit, then a random
        // while longer, however slowly a busy machine runs it.
        workingKills++;
        await waitFor(
          'the daemon to commit something new',
          async () => (await committedEvents(s)) > committedBefore,
          60_000,
          50,
        );
        await new Promise((r) => setTimeout(r, random() * 2_000));
      }
      daemon.kill('SIGKILL');
      await daemon.exited;
      // What the kill interrupted: entries read by a consumer and not acknowledged, or written to
      // the file since the previous kill.
      const pending = (await s.redis.client.xpending(outbox, 'delivery').catch(() => [0])) as [number];
      if (Number(pending[0]) > 0) killsWithPending++;
      const lines = (await readSinkFiles([sinkFile])).length;
      if (lines > linesBefore) killsAfterDelivery++;
      linesBefore = lines;
      const committed = await committedEvents(s);
      if (committed > committedBefore) killsAfterCommit++;
      committedBefore = committed;
    }
    console.log(
      `crash test: of ${KILLS} kills, ${killsAfterCommit} came after new commits, ${killsAfterDelivery} after new ` +
        `deliveries, ${killsWithPending} left deliveries pending`,
    );
    // Every kill meant for a working daemon found one (the schedule waited for it; this checks the wait).
    expect(killsAfterCommit).toBeGreaterThanOrEqual(workingKills);

    const survivor = s.daemon(config);
    s.sim.stopTraffic();
    const verdict = await s.settle(async () => [sinkFile], 60_000);
    console.log(`crash test after ${KILLS} kill -9: ${summary(verdict)}`);
    expect(verdict.expected).toBeGreaterThan(5_000);
    expect(verdict.missing).toEqual([]);
    expect(verdict.unexpected).toEqual([]);
    expect(verdict.altered).toEqual([]);
    // At-least-once is the promise for a plain file; the file sink's recent-id memory makes redelivered
    // batches after a crash show up as recognised duplicates, so none should reach the file.
    expect(verdict.duplicated).toEqual([]);
    survivor.kill('SIGTERM');
    expect(await survivor.exited).toBe(0);
  }, 900_000);
});
