import { describe, expect, it } from 'vitest';
import { profileFromEnv } from './profile.ts';
import { runTorture } from './torture.ts';

/**
 * The long profile, run by hand: `npm run test:torture` (TORTURE_MINUTES, TORTURE_SEED, TORTURE_REPLICAS;
 * TORTURE_PROFILE=short runs the CI profile here). See docs/torture.md.
 */
describe('torture', () => {
  const profile = profileFromEnv({ TORTURE_PROFILE: 'long', ...process.env });
  it(
    `${profile.name} profile: loses, alters and doubles nothing, and recovers (seed ${profile.seed})`,
    async () => {
      const report = await runTorture(profile);
      expect(report.failures).toEqual([]);
      expect(report.livenessMs).toBeDefined();
    },
    profile.faultMs + 15 * 60_000,
  );
});
