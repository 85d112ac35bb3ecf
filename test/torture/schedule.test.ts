import { describe, expect, it } from 'vitest';
import { profileFromEnv } from './profile.ts';
import { buildSchedule, faultKind } from './schedule.ts';

describe('torture fault schedule', () => {
  it('is a function of the seed: the same seed replays the same schedule, another seed differs', () => {
    const a = buildSchedule(profileFromEnv({ TORTURE_SEED: '42' }));
    const b = buildSchedule(profileFromEnv({ TORTURE_SEED: '42' }));
    const c = buildSchedule(profileFromEnv({ TORTURE_SEED: '43' }));
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });

  it('meets every provider and sink fault kind, kills and Redis faults, within the fault phase, even in the short profile', () => {
    for (const seed of ['1', '2', '3', '4', '5']) {
      const profile = profileFromEnv({ TORTURE_SEED: seed });
      const { faults, skewMs } = buildSchedule(profile);
      const kinds = new Set(faults.map((f) => faultKind(f.action)));
      for (const kind of [
        'kill',
        'redis-restart',
        'redis-pause',
        'provider rate-limit',
        'provider server-errors',
        'provider timeouts',
        'provider resets',
        'provider truncated',
        'provider malformed',
        'provider repeat-cursor',
        'provider maintenance',
        'provider cursor-rejected',
        ...['down', 'unavailable', 'throttled', 'server-errors', 'slow', 'lost-answers'].flatMap((t) => [
          `loki ${t}`,
          `es ${t}`,
          `s3 ${t}`,
        ]),
        'loki partial',
        'es partial',
      ]) {
        expect(kinds, `seed ${seed}`).toContain(kind);
      }
      const kills = faults.filter((f) => f.action.kind === 'kill' || f.action.kind === 'kill-all');
      expect(kills.length).toBeGreaterThanOrEqual(10);
      for (const f of faults) {
        const duration = 'durationMs' in f.action ? f.action.durationMs : 0;
        expect(f.atMs + duration).toBeLessThanOrEqual(profile.faultMs);
      }
      // Behind by less than the settle lag, or ahead by less than Loki's creation grace.
      expect(skewMs).toBeGreaterThan(-2_000);
      expect(skewMs).toBeLessThan(10 * 60_000);
    }
  });

  it('scales the long profile to hundreds of kills', () => {
    const { faults } = buildSchedule(profileFromEnv({ TORTURE_PROFILE: 'long', TORTURE_SEED: '9' }));
    expect(faults.filter((f) => f.action.kind.startsWith('kill')).length).toBeGreaterThanOrEqual(200);
  });

  it('refuses a malformed seed, length or replica count with the variable’s name', () => {
    expect(() => profileFromEnv({ TORTURE_SEED: 'abc' })).toThrow(/TORTURE_SEED/);
    expect(() => profileFromEnv({ TORTURE_MINUTES: '-1' })).toThrow(/TORTURE_MINUTES/);
    expect(() => profileFromEnv({ TORTURE_REPLICAS: '9' })).toThrow(/TORTURE_REPLICAS/);
  });
});
