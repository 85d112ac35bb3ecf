import { describe, expect, it } from 'vitest';
import {
  type CloudscaleState,
  expiredSinceCursorMs,
  firstStart,
  RETENTION_MARGIN_MS,
  readState,
  recoveryStart,
  seenHorizonMs,
} from '../../../src/sources/cloudscale/checkpoint.ts';

const MIN = 60_000;
const DAY = 1_440 * MIN;
const NOW = Date.UTC(2026, 5, 1);
const clock = { nowMs: NOW, retentionMs: 90 * DAY };

describe('where a poll without a checkpoint starts', () => {
  it('starts lookback ago on a new scope', () => {
    expect(firstStart(clock, 60 * MIN, 15 * MIN, undefined)).toEqual({
      startMs: NOW - 60 * MIN,
      expiredMs: 0,
    });
  });

  it('starts earlier when a forgotten checkpoint had delivered less far than the lookback', () => {
    const newestSeen = NOW - 5 * 60 * MIN;
    expect(firstStart(clock, 60 * MIN, 15 * MIN, newestSeen)).toEqual({
      startMs: newestSeen - 15 * MIN,
      expiredMs: 0,
    });
  });

  it('keeps the lookback when the seen-set is newer than it', () => {
    expect(firstStart(clock, 60 * MIN, 15 * MIN, NOW - MIN).startMs).toBe(NOW - 60 * MIN);
  });

  it('never asks beyond the retention; reports what expired only when delivered data is older', () => {
    expect(firstStart(clock, 90 * DAY, 15 * MIN, undefined)).toEqual({
      startMs: NOW - 90 * DAY + RETENTION_MARGIN_MS,
      expiredMs: 0,
    });
    const newestSeen = NOW - 100 * DAY;
    expect(firstStart(clock, 60 * MIN, 15 * MIN, newestSeen)).toEqual({
      startMs: NOW - 90 * DAY + RETENTION_MARGIN_MS,
      expiredMs: 10 * DAY + RETENTION_MARGIN_MS,
    });
  });
});

describe('where a read restarts after its cursor was refused', () => {
  it('restarts at the newest delivered time minus the overlap', () => {
    expect(recoveryStart(clock, { originMs: NOW - DAY, hwmMs: NOW - 2 * MIN }, 15 * MIN)).toEqual({
      startMs: NOW - 17 * MIN,
      expiredMs: 0,
    });
  });

  it('restarts where the first read started when nothing was delivered yet', () => {
    expect(recoveryStart(clock, { originMs: NOW - DAY }, 15 * MIN).startMs).toBe(NOW - DAY - 15 * MIN);
  });

  it('reports the expired part when the delivered time is beyond the retention', () => {
    const r = recoveryStart(clock, { originMs: NOW - 200 * DAY, hwmMs: NOW - 95 * DAY }, 15 * MIN);
    expect(r.startMs).toBe(NOW - 90 * DAY + RETENTION_MARGIN_MS);
    expect(r.expiredMs).toBe(5 * DAY + RETENTION_MARGIN_MS);
  });
});

describe('the seen-set horizon', () => {
  it('covers what a recovery would re-read', () => {
    expect(seenHorizonMs({ originMs: NOW - DAY, hwmMs: NOW - MIN }, 15 * MIN)).toBe(NOW - 17 * MIN);
    expect(seenHorizonMs({ originMs: NOW - DAY }, 15 * MIN)).toBe(NOW - DAY - 16 * MIN);
  });

  it('stays at the start of a time-based read until it reaches the end of the log', () => {
    expect(seenHorizonMs({ originMs: NOW - DAY, hwmMs: NOW - MIN, sinceMs: NOW - 3 * DAY }, 15 * MIN)).toBe(
      NOW - 3 * DAY - MIN,
    );
  });
});

describe('the stored state', () => {
  const state: CloudscaleState = {
    v: 1,
    url: 'https://api.cloudscale.ch/v1/project-logs?cursor=10225',
    urlAtMs: NOW - 91 * DAY,
    originMs: NOW - 200 * DAY,
    recent: [],
  };

  it('shows how much expired behind a cursor stored longer ago than the retention', () => {
    expect(expiredSinceCursorMs(clock, state)).toBe(DAY);
    expect(expiredSinceCursorMs(clock, { ...state, urlAtMs: NOW - MIN })).toBe(0);
  });

  it('reads a valid state and refuses another provider’s, naming the scope and the way out', () => {
    expect(readState({ state: JSON.parse(JSON.stringify(state)) }, 'k')).toEqual(state);
    expect(readState(undefined, 'k')).toBeUndefined();
    expect(() => readState({ state: { v: 1, hwm: 5 } }, 'cloudscale:project:p')).toThrow(
      /checkpoint of cloudscale:project:p is not a cloudscale checkpoint.*state reset/,
    );
  });
});
