import type { RedisClient } from '../redis/client.ts';
import type { AuditEvent } from './envelope.ts';
import type { RedisKeys } from './keys.ts';

/** How each path's ids are kept for the migration view: two days by event time, at most 100,000. */
export const PATHS_WINDOW_MS = 48 * 3_600_000;
export const PATHS_MAX = 100_000;

/** How the two paths compare for one scope over a window both have had time to cover. */
export interface PathComparison {
  readonly scope: string;
  /** The window compared, by event time: from when both paths reported, to `settle` ago. */
  readonly fromMs: number;
  readonly toMs: number;
  readonly polled: number;
  readonly pushed: number;
  readonly both: number;
  readonly pollOnly: number;
  readonly pushOnly: number;
  /** A few ids seen by one path only, to look up in a sink. */
  readonly pollOnlySample: readonly string[];
  readonly pushOnlySample: readonly string[];
}

/**
 * The poll → push migration view. The push commit records each pushed id (atomically, PUSH_COMMIT); the
 * poller records each id it read here, after its commit (informational: a crash in between only makes
 * the view miss an id). Both sets are bounded (two days by event time, 100,000 ids). Comparing them
 * tells an operator whether the Telemetry Router delivers what the API serves, and whether the two carry
 * the same ids, before the poller is switched off: ids that differ for one event show as one poll-only
 * and one push-only event.
 */
export class PathRecorder {
  readonly #redis: RedisClient;
  readonly #keys: RedisKeys;

  constructor(redis: RedisClient, keys: RedisKeys) {
    this.#redis = redis;
    this.#keys = keys;
  }

  async polled(scopeKey: string, events: readonly AuditEvent[], nowMs: number): Promise<void> {
    if (events.length === 0) return;
    const key = this.#keys.polledIds(scopeKey);
    const members: Array<string | number> = [];
    for (const event of events) members.push(event.timeMs, event.id);
    await this.#redis
      .multi()
      .zadd(key, ...members)
      .zremrangebyscore(key, '-inf', `(${nowMs - PATHS_WINDOW_MS}`)
      .zremrangebyrank(key, 0, -PATHS_MAX - 1)
      .exec();
  }

  /** Scopes the push path has reported for. */
  async pushedScopes(): Promise<string[]> {
    const probe = this.#keys.pushedIds('\u0000');
    const [before, after] = probe.split('\u0000') as [string, string];
    const found = new Set<string>();
    let cursor = '0';
    do {
      const [next, batch] = await this.#redis.scan(
        cursor,
        'MATCH',
        `${escapeGlob(before)}*${escapeGlob(after)}`,
        'COUNT',
        1000,
      );
      cursor = next;
      for (const key of batch) found.add(key.slice(before.length, key.length - after.length));
    } while (cursor !== '0');
    return [...found].sort();
  }

  /** Compares the paths over events of the last day that are at least `settleMs` old. */
  async compare(scopeKey: string, nowMs: number, settleMs = 15 * 60_000): Promise<PathComparison> {
    const [polledOldest, pushedOldest] = await Promise.all([
      this.#redis.zrange(this.#keys.polledIds(scopeKey), '0', '0', 'WITHSCORES'),
      this.#redis.zrange(this.#keys.pushedIds(scopeKey), '0', '0', 'WITHSCORES'),
    ]);
    const toMs = nowMs - settleMs;
    // Only the time both paths have reported for: before one started, "only the other" means nothing.
    const fromMs = Math.max(
      nowMs - 24 * 3_600_000,
      Number(polledOldest[1] ?? toMs),
      Number(pushedOldest[1] ?? toMs),
    );
    const range = async (key: string): Promise<Set<string>> =>
      fromMs >= toMs ? new Set() : new Set(await this.#redis.zrangebyscore(key, fromMs, `(${toMs}`));
    const [polled, pushed] = await Promise.all([
      range(this.#keys.polledIds(scopeKey)),
      range(this.#keys.pushedIds(scopeKey)),
    ]);
    const pollOnly = [...polled].filter((id) => !pushed.has(id));
    const pushOnly = [...pushed].filter((id) => !polled.has(id));
    return {
      scope: scopeKey,
      fromMs,
      toMs,
      polled: polled.size,
      pushed: pushed.size,
      both: polled.size - pollOnly.length,
      pollOnly: pollOnly.length,
      pushOnly: pushOnly.length,
      pollOnlySample: pollOnly.slice(0, 3),
      pushOnlySample: pushOnly.slice(0, 3),
    };
  }
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
