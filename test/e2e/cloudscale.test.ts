import { afterEach, describe, expect, it } from 'vitest';
import {
  type CloudscaleScenario,
  rawSummary,
  startCloudscaleScenario,
  startHostileServer,
} from '../support/cloudscale.ts';
import { waitFor } from '../support/daemon.ts';

let scenario: CloudscaleScenario | undefined;
afterEach(async () => {
  await scenario?.close();
  scenario = undefined;
});

describe('cloudscale end to end, judged by the simulator’s ground truth', () => {
  it('delivers every entry exactly once and unaltered through late commits, maintenance, a refused cursor, 429s and 5xx', async () => {
    const LATE_MAX_MS = 4_000;
    scenario = await startCloudscaleScenario({
      projects: 3,
      eventsPerMinute: 150,
      historyMs: 3 * 60_000,
      cloudscale: {
        commit: { minMs: 0, maxMs: 300, lateFraction: 0.1, lateMaxMs: LATE_MAX_MS },
        backdate: { fraction: 0.05, maxMs: 20_000 },
        twinFraction: 0.02,
      },
      // 8% server errors; a budget per token below one request a second forces 429s.
      sim: { faults: { serverErrorRate: 0.08 }, budget: { capacity: 2, refillPerSecond: 0.8 } },
    });
    const s = scenario;
    const daemon = s.daemon(await s.config());
    // Once every project has read its backlog, each poll starts from its stored cursor.
    await waitFor(
      'every project caught up',
      async () => {
        for (const p of s.projects) {
          const state = await s.redis.client.hget(
            `{auditlog}:scope:cloudscale:project:${p.name}:checkpoint`,
            'state',
          );
          if (state === null || 'sinceMs' in (JSON.parse(state) as object)) return false;
        }
        return true;
      },
      30_000,
    );
    // Maintenance until the daemon has met it, then stored cursors refused until three were: each fault
    // lasts as long as a slow machine needs to run into it, not a guessed few seconds.
    const statusCount = (status: string): number =>
      (s.sim.stats().byStatus as Record<string, number>)[status] ?? 0;
    s.sim.cloudscale.setMaintenance(s.sim.clock.simNow() + 24 * 3_600_000, 1);
    await waitFor('a 503 during maintenance', () => statusCount('503') > 0, 60_000, 50);
    s.sim.cloudscale.setMaintenance(undefined);
    s.sim.cloudscale.rejectCursors(3, 410);
    await waitFor('three stored cursors refused', () => statusCount('410') >= 3, 60_000, 50);
    // The budget is below the steady demand of three projects polled every second: 429s come for sure.
    await waitFor('a 429', () => statusCount('429') > 0, 60_000, 50);
    s.sim.cloudscale.stopTraffic();
    // The last late commits become visible; after that the truth is final.
    const finalAt = s.sim.clock.simNow() + LATE_MAX_MS + 500;
    await waitFor('the last late commits to be visible', () => s.sim.clock.simNow() >= finalAt, 60_000, 100);
    const verdict = await s.settle(45_000);
    const statuses = s.sim.stats().byStatus as Record<string, number>;
    console.log(`cloudscale oracle: ${rawSummary(verdict)}; simulator answered ${JSON.stringify(statuses)}`);
    expect(verdict.expected).toBeGreaterThan(1_000);
    expect(verdict.missing).toEqual([]);
    expect(verdict.duplicated).toEqual([]);
    expect(verdict.unexpected).toEqual([]);
    expect(verdict.repeatedIds).toEqual([]);
    const truth = s.truth();
    expect(truth.filter((e) => e.twinOf !== null).length).toBeGreaterThan(0);
    expect(truth.filter((e) => e.visibleAtMs - e.insertedAtMs > 1_000).length).toBeGreaterThan(0);
    expect(statuses['503'] ?? 0).toBeGreaterThan(0);
    expect(statuses['410'] ?? 0).toBeGreaterThan(0);
    expect(statuses['429'] ?? 0).toBeGreaterThan(0);

    daemon.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    const log = (await daemon.logLines()).map((l) => JSON.stringify(l)).join('\n');
    expect(log).toContain('the stored cursor was refused');
    expect(log).toContain('shutdown complete');
    for (const project of s.projects) expect(log).not.toContain(project.token);
  }, 300_000);

  it('refuses next/poll_more on another origin: the hostile server never sees a request, the poll fails loudly', async () => {
    scenario = await startCloudscaleScenario({ projects: 1, eventsPerMinute: 60, historyMs: 60_000 });
    const s = scenario;
    const hostile = await startHostileServer();
    try {
      s.sim.cloudscale.linkOrigin = hostile.origin;
      const daemon = s.daemon(await s.config());
      const status = `{auditlog}:scope:cloudscale:project:${s.projects[0]?.name}:status`;
      await waitFor(
        'a failed poll',
        async () => (await s.redis.client.hget(status, 'errorReason')) === 'origin_refused',
        20_000,
      );
      expect(await s.redis.client.hget(status, 'errorMessage')).toContain(
        `refusing to send credentials to ${hostile.origin}/v1/project-logs; only ${s.sim.url} is configured`,
      );
      expect(hostile.requests).toEqual([]);
      expect((await s.verdict()).delivered).toBe(0);

      // Back on its own origin, the project is read from where it stood: nothing was lost meanwhile.
      s.sim.cloudscale.linkOrigin = undefined;
      s.sim.cloudscale.stopTraffic();
      const verdict = await s.settle(20_000);
      expect(verdict.missing).toEqual([]);
      expect(verdict.duplicated).toEqual([]);
      expect(hostile.requests).toEqual([]);

      daemon.kill('SIGTERM');
      expect(await daemon.exited).toBe(0);
      const lines = await daemon.logLines();
      const refused = lines.find((l) => String(l.msg).includes('refusing to send credentials'));
      expect(refused).toMatchObject({ level: 'error', reason: 'origin_refused' });
      expect(JSON.stringify(lines)).not.toContain(s.projects[0]?.token as string);
    } finally {
      await hostile.close();
    }
  }, 300_000);
});
