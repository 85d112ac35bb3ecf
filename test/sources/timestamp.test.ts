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

describe('parseRfc3339 (property)', () => {
  it('agrees with Date for any UTC instant, at any fractional precision, and with the offset form', async () => {
    const fc = (await import('fast-check')).default;
    fc.assert(
      fc.property(
        fc.date({ min: new Date('1970-01-01'), max: new Date('2999-12-31'), noInvalidDate: true }),
        fc.integer({ min: 0, max: 9 }),
        fc.integer({ min: 0, max: 999_999 }),
        (date, precision, subMs) => {
          const base = date.toISOString().slice(0, 19);
          const fraction = (
            String(date.getUTCMilliseconds()).padStart(3, '0') + String(subMs).padStart(6, '0')
          ).slice(0, precision);
          const text = `${base}${precision > 0 ? `.${fraction}` : ''}Z`;
          const parsed = parseRfc3339(text);
          const expectedMs = Date.parse(`${base}.${fraction.padEnd(3, '0').slice(0, 3)}Z`);
          expect(parsed).toEqual({ ms: expectedMs, iso: text });
          // The same instant written with an offset converts to the same UTC text and milliseconds.
          const shifted = new Date(Date.parse(`${base}Z`) + 2 * 3_600_000).toISOString().slice(0, 19);
          const withOffset = parseRfc3339(`${shifted}${precision > 0 ? `.${fraction}` : ''}+02:00`);
          expect(withOffset).toEqual({ ms: expectedMs, iso: text });
        },
      ),
      { numRuns: 2_000 },
    );
  });
});
