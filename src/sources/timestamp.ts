export interface Timestamp {
  /** Epoch milliseconds (sub-millisecond digits truncated). */
  readonly ms: number;
  /** RFC 3339 in UTC with the original fractional digits kept, e.g. `2022-03-18T14:50:57.12345Z`. */
  readonly iso: string;
}

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * Parses an RFC 3339 timestamp without losing precision: providers send microseconds (STACKIT, cloudscale)
 * and Loki stores nanoseconds, while Date keeps milliseconds. Returns undefined for anything else,
 * including impossible dates such as February 30th.
 */
export function parseRfc3339(text: string): Timestamp | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const fraction = m[7] ?? '';
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
    return undefined;
  const local = Date.UTC(year, month - 1, day, hour, minute, Math.min(second, 59));
  const check = new Date(local);
  if (check.getUTCDate() !== day || check.getUTCMonth() !== month - 1) return undefined;
  const offsetMinutes = m[8] ? 0 : (m[9] === '-' ? -1 : 1) * (Number(m[10]) * 60 + Number(m[11]));
  const wholeSeconds = local - offsetMinutes * 60_000;
  const ms = wholeSeconds + Number(fraction.padEnd(3, '0').slice(0, 3));
  const iso = `${new Date(wholeSeconds).toISOString().slice(0, 19)}${fraction ? `.${fraction}` : ''}Z`;
  return { ms, iso };
}
