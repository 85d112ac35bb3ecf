import { describe, expect, it } from 'vitest';
import { planRange, planWindows, resumeFromMs, seenHorizonMs } from '../../../src/sources/stackit/windows.ts';

const H = 3_600_000;
const D = 24 * H;
const now = Date.UTC(2026, 10, 21, 12, 0, 0);
const base = {
  nowMs: now,
  overlapMs: 15 * 60_000,
  settleLagMs: 60_000,
  lookbackMs: H,
  retentionMs: 90 * D,
  retentionMarginMs: 10 * 60_000,
  maxWindowMs: D,
};

describe('planWindows', () => {
  it('starts a new scope at now − lookback and stops at now − settleLag', () => {
    const plan = planWindows({ ...base, hwmMs: undefined, originMs: undefined });
    expect(plan.windows).toEqual([{ startMs: now - H, endMs: now - 60_000 }]);
    expect(plan.expiredMs).toBe(0);
  });

  it('re-reads the overlap before the high-water mark', () => {
    const hwm = now - 5 * 60_000;
    const plan = planWindows({ ...base, hwmMs: hwm, originMs: undefined });
    expect(plan.windows).toEqual([{ startMs: hwm - 15 * 60_000, endMs: now - 60_000 }]);
  });

  it('resumes an unfinished first window at its origin, not at a later now − lookback', () => {
    const origin = now - 2 * H;
    const plan = planWindows({ ...base, hwmMs: undefined, originMs: origin });
    expect(plan.windows[0]?.startMs).toBe(origin);
  });

  it('walks a long lookback in contiguous windows of at most 24 h, oldest first', () => {
    const plan = planWindows({ ...base, lookbackMs: 90 * D, hwmMs: undefined, originMs: undefined });
    const { windows } = plan;
    expect(windows[0]?.startMs).toBe(now - 90 * D + 10 * 60_000); // clamped inside retention
    for (const w of windows) expect(w.endMs - w.startMs).toBeLessThanOrEqual(D);
    for (let i = 1; i < windows.length; i++) expect(windows[i]?.startMs).toBe(windows[i - 1]?.endMs);
    expect(windows.at(-1)?.endMs).toBe(now - 60_000);
    expect(windows).toHaveLength(90);
  });

  it('reports the time lost when the high-water mark fell out of retention', () => {
    const hwm = now - 100 * D;
    const plan = planWindows({ ...base, hwmMs: hwm, originMs: undefined });
    expect(plan.expiredMs).toBe(10 * D + 10 * 60_000);
    expect(plan.windows[0]?.startMs).toBe(now - 90 * D + 10 * 60_000);
  });

  it('plans nothing when the high-water mark is already past now − settleLag', () => {
    const plan = planWindows({ ...base, overlapMs: 0, hwmMs: now - 30_000, originMs: undefined });
    expect(plan.windows).toEqual([]);
  });
});

describe('seen-set horizon', () => {
  it('keeps every id a later poll can return, with a minute of slack', () => {
    const hwm = now - 10 * 60_000;
    const nextStart = resumeFromMs(hwm, undefined, 15 * 60_000) as number;
    expect(nextStart).toBe(hwm - 15 * 60_000);
    expect(seenHorizonMs(nextStart)).toBe(nextStart - 60_000);
    expect(resumeFromMs(undefined, now - H, 15 * 60_000)).toBe(now - H);
    expect(resumeFromMs(undefined, undefined, 15 * 60_000)).toBeUndefined();
  });
});

describe('the live floor', () => {
  it('keeps the overlap re-read from reaching below the floor (backfills own what is there)', () => {
    const floor = now - 10 * 60_000;
    const hwm = now - 5 * 60_000;
    const plan = planWindows({ ...base, hwmMs: hwm, originMs: undefined, floorMs: floor });
    expect(plan.windows).toEqual([{ startMs: floor, endMs: now - 60_000 }]);
    expect(planWindows({ ...base, hwmMs: hwm, originMs: undefined }).windows[0]?.startMs).toBe(
      hwm - 15 * 60_000,
    );
  });
});

describe('planRange', () => {
  const range = { fromMs: now - 3 * D - H, toMs: now - D, retainedFromMs: now - 90 * D, maxWindowMs: D };

  it('walks the range in 24 h windows oldest first, the last one short', () => {
    expect(planRange(range)).toEqual({
      windows: [
        { startMs: now - 3 * D - H, endMs: now - 2 * D - H },
        { startMs: now - 2 * D - H, endMs: now - D - H },
        { startMs: now - D - H, endMs: now - D },
      ],
      expired: undefined,
    });
  });

  it('resumes where it stopped, and is empty when done', () => {
    expect(planRange({ ...range, doneUntilMs: now - D - H }).windows).toEqual([
      { startMs: now - D - H, endMs: now - D },
    ]);
    expect(planRange({ ...range, doneUntilMs: now - D }).windows).toEqual([]);
  });

  it('reports history that left retention instead of asking for it', () => {
    const plan = planRange({ ...range, retainedFromMs: now - 2 * D });
    expect(plan.expired).toEqual({ startMs: now - 3 * D - H, endMs: now - 2 * D });
    expect(plan.windows[0]).toEqual({ startMs: now - 2 * D, endMs: now - D });
    expect(planRange({ ...range, retainedFromMs: now }).windows).toEqual([]);
  });
});
