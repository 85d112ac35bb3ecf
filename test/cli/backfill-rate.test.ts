import { describe, expect, it } from 'vitest';
import { BackfillRate, describeRate, StallWatch } from '../../src/cli/backfill-rate.ts';
import { formatDuration } from '../../src/config/duration.ts';

describe('backfill progress', () => {
  it('gives events per second and the time left at the pace seen since following began', () => {
    const rate = new BackfillRate();
    expect(rate.update(0, 0.1, 1_000)).toEqual({ eventsPerSecond: undefined, etaMs: undefined });
    // 10 s later: 500 more events, another 10% of the range read; 80% left at 1%/s is 80 s.
    const later = rate.update(10_000, 0.2, 1_500);
    expect(later.eventsPerSecond).toBe(50);
    expect(later.etaMs).toBeCloseTo(80_000);
    expect(describeRate(later, formatDuration)).toBe('  50 events/s, about 1m20s left');
  });

  it('promises no time left before the read range moved', () => {
    const rate = new BackfillRate();
    rate.update(0, 0.5, 0);
    expect(rate.update(30_000, 0.5, 300)).toEqual({ eventsPerSecond: 10, etaMs: undefined });
    expect(describeRate({ eventsPerSecond: undefined, etaMs: undefined }, formatDuration)).toBe('');
  });

  it('does not call a busy day of many pages a stall: committed events are progress', () => {
    const watch = new StallWatch(60_000);
    // The read-up-to mark stands still for three minutes while pages keep being committed.
    for (let t = 0, committed = 0; t <= 180_000; t += 5_000, committed += 100) {
      expect(watch.stalled(t, `run1:day0:${committed}:false`, false)).toBe(false);
    }
  });

  it('says once when nothing moved for a minute, and never while the shipper was told to wait', () => {
    const waiting = new StallWatch(60_000);
    for (let t = 0; t <= 180_000; t += 5_000) expect(waiting.stalled(t, 'same', true)).toBe(false);
    const watch = new StallWatch(60_000);
    const said = [];
    for (let t = 0; t <= 180_000; t += 5_000) said.push(watch.stalled(t, 'same', false));
    expect(said.filter(Boolean)).toHaveLength(1);
    expect(said.indexOf(true)).toBe(13); // first check past 60 s (65 s)
  });
});
