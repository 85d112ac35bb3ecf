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
  return parseUtcFast(text) ?? parseGeneral(text);
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * The shape nearly every provider sends, `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, read digit by digit: this
 * runs once per event, and the general regex path costs several times more.
 */
function parseUtcFast(text: string): Timestamp | undefined {
  const n = text.length;
  if (n < 20 || text.charCodeAt(n - 1) !== 0x5a /* Z */ || text.charCodeAt(10) !== 0x54 /* T */)
    return undefined;
  if (text[4] !== '-' || text[7] !== '-' || text[13] !== ':' || text[16] !== ':') return undefined;
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 2);
  const day = digits(text, 8, 2);
  const hour = digits(text, 11, 2);
  const minute = digits(text, 14, 2);
  const second = digits(text, 17, 2);
  if (year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59) {
    return undefined;
  }
  if (second < 0 || second > 59) return undefined;
  const leap = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > (DAYS_IN_MONTH[month - 1] as number) + (leap ? 1 : 0)) return undefined;
  let millis = 0;
  if (n > 20) {
    const fractionDigits = n - 21;
    if (text[19] !== '.' || fractionDigits < 1 || fractionDigits > 9 || digits(text, 20, fractionDigits) < 0)
      return undefined;
    const ms = text.slice(20, 20 + Math.min(3, fractionDigits));
    millis = Number(ms) * 10 ** (3 - ms.length);
  } else if (n !== 20) {
    return undefined;
  }
  return { ms: Date.UTC(year, month - 1, day, hour, minute, second, millis), iso: text };
}

/** The decimal value of `count` digits at `at`, or -1 if any is not a digit. */
function digits(text: string, at: number, count: number): number {
  let value = 0;
  for (let i = at; i < at + count; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    value = value * 10 + d;
  }
  return value;
}

function parseGeneral(text: string): Timestamp | undefined {
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
