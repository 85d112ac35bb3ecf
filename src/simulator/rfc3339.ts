/**
 * RFC 3339 timestamps at microsecond resolution. The simulator keeps event times in epoch
 * microseconds because STACKIT prints up to µs digits (`2022-03-18T14:50:57.12345Z`) and a range bound
 * may carry them too; epoch µs stay well inside Number's exact-integer range.
 */

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * Parses an RFC 3339 date-time to epoch µs; digits below 1 µs round up (so `t >= bound` and
 * `t < bound` stay exact for µs event times). Returns undefined for anything else.
 */
export function parseRfc3339Us(text: string): number | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [, ys, mos, ds, hs, mis, ss, frac, zulu, sign, ohs, oms] = m;
  const year = Number(ys);
  const month = Number(mos);
  const day = Number(ds);
  const hour = Number(hs);
  const minute = Number(mis);
  const second = Number(ss);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 60) return undefined;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day > daysInMonth) return undefined;
  let ms = Date.UTC(year, month - 1, day, hour, minute, Math.min(second, 59));
  if (second === 60) ms += 1_000; // leap second: treat as the next instant
  if (!zulu) {
    const oh = Number(ohs);
    const om = Number(oms);
    if (oh > 23 || om > 59) return undefined;
    const offsetMs = (oh * 60 + om) * 60_000;
    ms += sign === '+' ? -offsetMs : offsetMs;
  }
  let us = ms * 1000;
  if (frac) {
    us += Number(frac.slice(0, 6).padEnd(6, '0'));
    if (/[1-9]/.test(frac.slice(6))) us += 1;
  }
  return Number.isFinite(us) ? us : undefined;
}

let cachedMinute = Number.NaN;
let cachedPrefix = '';

/** Formats epoch µs as `YYYY-MM-DDTHH:MM:SS[.f…]Z` with `digits` (0–6) fractional digits, truncating. */
export function formatRfc3339Us(us: number, digits: number): string {
  const ms = Math.floor(us / 1000);
  const minute = Math.floor(ms / 60_000);
  if (minute !== cachedMinute) {
    cachedPrefix = new Date(minute * 60_000).toISOString().slice(0, 17); // 2025-04-01T14:50:
    cachedMinute = minute;
  }
  const second = Math.floor((ms - minute * 60_000) / 1000);
  const base = `${cachedPrefix}${second < 10 ? '0' : ''}${second}`;
  if (digits <= 0) return `${base}Z`;
  const frac = String(us - Math.floor(us / 1_000_000) * 1_000_000).padStart(6, '0');
  return `${base}.${frac.slice(0, digits)}Z`;
}

/** Epoch ms as RFC 3339 with milliseconds (what `toISOString` prints). */
export function formatRfc3339Ms(ms: number): string {
  return new Date(ms).toISOString();
}
