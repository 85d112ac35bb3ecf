/**
 * Small readers for the loosely typed entries providers send, used when mapping an entry to the common
 * envelope. Shared so every provider reads and describes odd values the same way.
 */

/** A non-empty string, else undefined. */
export function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** A plain object (not null, not an array), else undefined. */
export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/** Drops undefined fields; undefined when nothing is left. */
export function compact<T extends Record<string, string | undefined>>(
  value: T,
): { [K in keyof T]?: string } | undefined {
  const entries = Object.entries(value).filter(([, v]) => v !== undefined);
  return entries.length > 0 ? (Object.fromEntries(entries) as { [K in keyof T]?: string }) : undefined;
}

/** `{key: value}` to spread into an event, or nothing when the value is undefined. */
export function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/** A value for a defect or anomaly message: its type, or a short quote of a string. */
export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value === undefined) return 'nothing';
  return typeof value === 'string'
    ? `"${value.length > 40 ? `${value.slice(0, 40)}…` : value}"`
    : typeof value;
}
