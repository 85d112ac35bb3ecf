import { describe, expect, it } from 'vitest';
import { parseRfc3339 } from '../../src/sources/timestamp.ts';

describe('parseRfc3339', () => {
  it('keeps sub-millisecond digits in the ISO form and truncates them in ms', () => {
    expect(parseRfc3339('2022-03-18T14:50:57.12345Z')).toEqual({
      ms: Date.UTC(2022, 2, 18, 14, 50, 57, 123),
      iso: '2022-03-18T14:50:57.12345Z',
    });
    expect(parseRfc3339('2025-04-01T14:50:57Z')?.iso).toBe('2025-04-01T14:50:57Z');
  });

  it('converts offsets to UTC', () => {
    const parsed = parseRfc3339('2025-01-01T01:30:00.5+02:00');
    expect(parsed?.iso).toBe('2024-12-31T23:30:00.5Z');
    expect(parsed?.ms).toBe(Date.UTC(2024, 11, 31, 23, 30, 0, 500));
  });

  it('refuses what is not an RFC 3339 date-time', () => {
    for (const bad of [
      '2025-02-30T00:00:00Z',
      '2025-13-01T00:00:00Z',
      '2025-01-01',
      '1735689600',
      '2025-01-01T00:00:00',
    ]) {
      expect(parseRfc3339(bad), bad).toBeUndefined();
    }
  });
});
