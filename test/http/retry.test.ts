import { describe, expect, it } from 'vitest';
import { backoffDelayMs, parseRetryAfter, sleep } from '../../src/http/retry.ts';

describe('backoffDelayMs', () => {
  it('grows exponentially up to the cap, with full jitter', () => {
    const policy = { initialMs: 1_000, maxMs: 30_000 };
    expect(backoffDelayMs(0, policy, () => 1)).toBe(1_000);
    expect(backoffDelayMs(3, policy, () => 1)).toBe(8_000);
    expect(backoffDelayMs(10, policy, () => 1)).toBe(30_000);
    expect(backoffDelayMs(100, policy, () => 1)).toBe(30_000);
    expect(backoffDelayMs(3, policy, () => 0.5)).toBe(4_000);
    expect(backoffDelayMs(3, policy, () => 0)).toBe(0);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.UTC(2026, 0, 1);
  it('reads delta-seconds and HTTP-dates', () => {
    expect(parseRetryAfter('7', now, 60_000)).toBe(7_000);
    expect(parseRetryAfter(new Date(now + 12_000).toUTCString(), now, 60_000)).toBe(12_000);
  });
  it('clamps a date in the past to zero and a huge value to the maximum', () => {
    expect(parseRetryAfter(new Date(now - 60_000).toUTCString(), now, 60_000)).toBe(0);
    expect(parseRetryAfter('86400', now, 60_000)).toBe(60_000);
  });
  it('ignores what it cannot read', () => {
    expect(parseRetryAfter(undefined, now, 60_000)).toBeUndefined();
    expect(parseRetryAfter('soon', now, 60_000)).toBeUndefined();
    expect(parseRetryAfter('', now, 60_000)).toBeUndefined();
  });
  it('treats negative and garbage values as absent, not as "retry now" (issue 9 §13)', () => {
    for (const garbage of ['-5', '-0.5', '+5', '5s', '1e3', 'Infinity', 'NaN', '0x10', '2026-01-01']) {
      expect(parseRetryAfter(garbage, now, 60_000), garbage).toBeUndefined();
    }
  });
  it('reads the obsolete RFC 850 and asctime date forms', () => {
    expect(parseRetryAfter('Thursday, 01-Jan-26 00:00:30 GMT', now, 60_000)).toBe(30_000);
    expect(parseRetryAfter('Thu Jan  1 00:00:30 2026', now, 60_000)).toBe(30_000);
  });
});

describe('sleep', () => {
  it('rejects with the abort reason when aborted', async () => {
    const controller = new AbortController();
    const pending = sleep(10_000, controller.signal);
    controller.abort(new Error('stop'));
    await expect(pending).rejects.toThrow('stop');
  });
});
