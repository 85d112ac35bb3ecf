/**
 * Issue 9 §13: a clamped 5-minute Retry-After used to hold a poll worker for the whole wait, so a few
 * hostile scopes could occupy every worker and the others starved. Now the poll ends, the wait is
 * recorded, and the scope is not asked again before it is over, while every other scope keeps polling.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  type CloudscaleScenario,
  judgeByRaw,
  rawSummary,
  startCloudscaleScenario,
} from '../support/cloudscale.ts';
import { waitFor } from '../support/daemon.ts';
import { FaultProxy } from '../support/fault-proxy.ts';
import { readSinkFiles } from '../support/oracle.ts';

let scenario: CloudscaleScenario | undefined;
let proxy: FaultProxy | undefined;
afterEach(async () => {
  await scenario?.close();
  await proxy?.stop();
  scenario = undefined;
  proxy = undefined;
});

describe('Retry-After without holding a poll slot (issue 9 §13)', () => {
  it('keeps polling the other scopes while more scopes than workers are told to wait 5 minutes', async () => {
    // Six projects wait, one is healthy; the daemon has 4 poll workers.
    scenario = await startCloudscaleScenario({ projects: 7, eventsPerMinute: 120, historyMs: 60_000 });
    const s = scenario;
    const healthy = s.projects[6] as (typeof s.projects)[number];
    const hostile = new Set(s.projects.slice(0, 6).map((p) => `Bearer ${p.token}`));
    const requests = new Map<string, number>();
    proxy = new FaultProxy(s.sim.url);
    await proxy.start();
    proxy.misbehave((req) => {
      const auth = String(req.headers.authorization);
      requests.set(auth, (requests.get(auth) ?? 0) + 1);
      if (!hostile.has(auth)) return undefined;
      return {
        type: 'reply',
        status: 429,
        headers: { 'content-type': 'application/json', 'retry-after': '3600' },
        body: '{"detail":"Request was throttled. Expected available in 3600 seconds."}',
      };
    });
    const daemon = s.daemon(await s.config(), { SIM_URL: proxy.url });

    await waitFor('every hostile scope asked once', () => [...hostile].every((h) => requests.has(h)), 90_000);
    const healthyAuth = `Bearer ${healthy.token}`;
    const healthyBefore = requests.get(healthyAuth) ?? 0;
    // The healthy scope keeps being polled at its interval (1 s) while all six wait.
    await waitFor(
      'the healthy scope polled 5 more times',
      () => (requests.get(healthyAuth) ?? 0) >= healthyBefore + 5,
      90_000,
    );
    // Its entries arrive, including those made after the hostile scopes were told to wait.
    const truth = () => s.sim.cloudscale.truth({ project: healthy.name });
    let verdict = judgeByRaw(truth(), await readSinkFiles([s.sinkPath]));
    await waitFor(
      'the healthy scope delivered',
      async () => {
        verdict = judgeByRaw(truth(), await readSinkFiles([s.sinkPath]));
        return verdict.missing.length === 0 && verdict.expected > 0;
      },
      90_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}: ${rawSummary(verdict)}`);
    });
    expect(verdict.duplicated).toEqual([]);

    // Each hostile scope was asked exactly once: the wait (clamped to 5 minutes) is honoured.
    for (const h of hostile) expect(requests.get(h)).toBe(1);
    const lines = await daemon.logLines();
    const waits = lines.filter((l) => String(l.msg).includes('it is not polled before then'));
    expect(new Set(waits.map((l) => l.scope)).size).toBe(6);
    for (const line of waits) expect(line.waitMs).toBe(300_000);
    // The failure names provider, scope and status.
    const failed = lines.find((l) => String(l.msg).startsWith('poll failed') && l.status === 429);
    expect(String(failed?.msg)).toMatch(/cloudscale provider "cs".*HTTP 429/);
    expect(failed?.scope).toMatch(/^cloudscale:project:project-[0-5]$/);
    expect(daemon.child.exitCode).toBeNull();
  }, 300_000);
});
