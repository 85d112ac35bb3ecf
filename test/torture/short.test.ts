import { describe, expect, it } from 'vitest';
import { profileFromEnv } from './profile.ts';
import { runTorture } from './torture.ts';

/**
 * The torture suite's short profile, in CI with the normal suite: a couple of replicas killed -9 every
 * few seconds, Redis restarted and paused, every provider and sink fault kind at least once, then the
 * oracle (docs/torture.md). TORTURE_SEED replays a failing run's schedule.
 */
describe('torture, short profile', () => {
  const profile = profileFromEnv({ ...process.env, TORTURE_PROFILE: 'short' });
  it(`loses, alters and doubles nothing, and recovers, under kill -9 and every fault kind (seed ${profile.seed})`, async () => {
    const report = await runTorture(profile);
    expect(report.failures).toEqual([]);
    expect(report.eventsChecked).toBeGreaterThan(500);
    expect(report.kills).toBeGreaterThanOrEqual(8);
    expect(report.livenessMs).toBeDefined();
  }, 300_000);
});
