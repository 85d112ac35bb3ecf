/** The BullMQ queue of poll jobs: one job scheduler per scope creates them. */
export const POLL_QUEUE = 'poll';

export interface PollJobData {
  /** Scope key (`stackit:project:…`); the worker looks it up in its own config. */
  readonly scope: string;
}

export function schedulerId(scopeKey: string): string {
  return `poll:${scopeKey}`;
}

/**
 * A stable phase in [1, interval) per scope (0 would let BullMQ pick its own). Thousands of scopes with the same interval then start their
 * polls spread evenly over the interval instead of all at once, and the spread survives restarts.
 */
export function scheduleOffsetMs(scopeKey: string, intervalMs: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < scopeKey.length; i++) {
    hash ^= scopeKey.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return intervalMs > 1 ? 1 + (hash % (intervalMs - 1)) : 0;
}
