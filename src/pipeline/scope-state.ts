import { redactSecrets } from '../config/redact.ts';
import { keysWithPrefix, type RedisClient } from '../redis/client.ts';
import type { Checkpoint } from '../sources/source.ts';
import type { RedisKeys } from './keys.ts';

export interface StoredCheckpoint {
  readonly checkpoint: Checkpoint;
  /** Fencing token of the poll that wrote it. */
  readonly token: string;
  readonly updatedAtMs: number;
  /** Events committed for this scope since its state was created. */
  readonly committed: number;
}

export type PollOutcomeKind = 'completed' | 'paused' | 'interrupted' | 'failed';

export interface PollRecord {
  readonly outcome: PollOutcomeKind;
  readonly startedAtMs: number;
  readonly endedAtMs: number;
  readonly added: number;
  readonly error?: { readonly reason: string; readonly message: string } | undefined;
  /** The provider asked not to be asked again before this time (Retry-After); no poll runs before it. */
  readonly waitUntilMs?: number | undefined;
}

export interface ScopeStatus {
  readonly lastPoll?: PollRecord;
  readonly lastSuccessAtMs?: number;
  readonly consecutiveFailures: number;
  readonly leaseHeld: boolean;
  readonly seenIds: number;
  /** Since when the provider answers 404 for the scope (it is re-checked slowly meanwhile). */
  readonly notFoundSinceMs?: number;
  /** The provider asked this scope to wait until then (Retry-After); it is not polled before. */
  readonly waitUntilMs?: number;
}

/** A scope the provider answered 404 for: since when, and when it was last asked. */
export interface NotFound {
  readonly sinceMs: number;
  readonly checkedAtMs: number;
}

/** Reads and resets what Redis holds about a scope: its checkpoint and the record of its polls. */
export class ScopeStateStore {
  readonly #redis: RedisClient;
  readonly #keys: RedisKeys;

  constructor(redis: RedisClient, keys: RedisKeys) {
    this.#redis = redis;
    this.#keys = keys;
  }

  async checkpoint(scopeKey: string): Promise<StoredCheckpoint | undefined> {
    const fields = await this.#redis.hgetall(this.#keys.checkpoint(scopeKey));
    if (fields.state === undefined) return undefined;
    let state: unknown;
    try {
      state = JSON.parse(fields.state);
    } catch {
      throw new Error(
        `checkpoint of ${scopeKey} in Redis is not JSON; reset it with "auditlog-shipper state reset"`,
      );
    }
    const watermark = fields.watermark === undefined ? undefined : Number(fields.watermark);
    return {
      checkpoint: {
        state,
        ...(watermark !== undefined && Number.isFinite(watermark) ? { watermarkMs: watermark } : {}),
      },
      token: fields.token ?? '',
      updatedAtMs: Number(fields.updatedAt ?? 0),
      committed: Number(fields.committed ?? 0),
    };
  }

  /** Event time (epoch ms) of the newest id in the scope's seen-set; undefined when it is empty. */
  async newestSeenMs(scopeKey: string): Promise<number | undefined> {
    const [, score] = await this.#redis.zrange(this.#keys.seen(scopeKey), '-1', '-1', 'WITHSCORES');
    return score === undefined ? undefined : Number(score);
  }

  async recordPoll(scopeKey: string, record: PollRecord): Promise<void> {
    const key = this.#keys.status(scopeKey);
    const fields: Record<string, string | number> = {
      outcome: record.outcome,
      startedAt: record.startedAtMs,
      endedAt: record.endedAtMs,
      added: record.added,
      errorReason: record.error?.reason ?? '',
      errorMessage: redactSecrets(record.error?.message ?? ''),
    };
    const multi = this.#redis.multi().hset(key, fields);
    if (record.waitUntilMs !== undefined) multi.hset(key, 'waitUntil', record.waitUntilMs);
    else multi.hdel(key, 'waitUntil');
    if (record.outcome === 'failed') multi.hincrby(key, 'consecutiveFailures', 1);
    else if (record.outcome === 'completed')
      multi.hset(key, 'consecutiveFailures', 0, 'lastSuccessAt', record.endedAtMs);
    await multi.exec();
  }

  async status(scopeKey: string): Promise<ScopeStatus> {
    const [fields, lease, seen] = await Promise.all([
      this.#redis.hgetall(this.#keys.status(scopeKey)),
      this.#redis.exists(this.#keys.lease(scopeKey)),
      this.#redis.zcard(this.#keys.seen(scopeKey)),
    ]);
    const lastPoll: PollRecord | undefined =
      fields.outcome === undefined
        ? undefined
        : {
            outcome: fields.outcome as PollOutcomeKind,
            startedAtMs: Number(fields.startedAt),
            endedAtMs: Number(fields.endedAt),
            added: Number(fields.added ?? 0),
            error: fields.errorReason
              ? { reason: fields.errorReason, message: fields.errorMessage ?? '' }
              : undefined,
          };
    return {
      ...(lastPoll ? { lastPoll } : {}),
      ...(fields.lastSuccessAt ? { lastSuccessAtMs: Number(fields.lastSuccessAt) } : {}),
      consecutiveFailures: Number(fields.consecutiveFailures ?? 0),
      leaseHeld: lease === 1,
      seenIds: seen,
      ...(fields.notFoundSince ? { notFoundSinceMs: Number(fields.notFoundSince) } : {}),
      ...(fields.waitUntil ? { waitUntilMs: Number(fields.waitUntil) } : {}),
    };
  }

  /** Records that the provider asked this scope to wait until `untilMs`. */
  async deferUntil(scopeKey: string, untilMs: number): Promise<void> {
    await this.#redis.hset(this.#keys.status(scopeKey), 'waitUntil', untilMs);
  }

  /** Until when the provider asked this scope to wait (epoch ms), if it did. */
  async waitUntil(scopeKey: string): Promise<number | undefined> {
    const until = await this.#redis.hget(this.#keys.status(scopeKey), 'waitUntil');
    return until ? Number(until) : undefined;
  }

  async notFound(scopeKey: string): Promise<NotFound | undefined> {
    const [since, checkedAt] = await this.#redis.hmget(
      this.#keys.status(scopeKey),
      'notFoundSince',
      'notFoundCheckedAt',
    );
    if (!since) return undefined;
    return { sinceMs: Number(since), checkedAtMs: Number(checkedAt ?? since) };
  }

  /** Records a 404; returns true when it is the first of a run (the scope was found before). */
  async markNotFound(scopeKey: string, nowMs: number): Promise<boolean> {
    const key = this.#keys.status(scopeKey);
    const [[, first]] = (await this.#redis
      .multi()
      .hsetnx(key, 'notFoundSince', nowMs)
      .hset(key, 'notFoundCheckedAt', nowMs)
      .exec()) as [[Error | null, number], [Error | null, number]];
    return Number(first) === 1;
  }

  async clearNotFound(scopeKey: string): Promise<void> {
    await this.#redis.hdel(this.#keys.status(scopeKey), 'notFoundSince', 'notFoundCheckedAt');
  }

  /**
   * Forgets where the scope was read up to, so its next poll starts from the lookback again. The
   * seen-set stays: events still in it are not shipped a second time.
   */
  async reset(scopeKey: string): Promise<boolean> {
    const removed = await this.#redis.del(this.#keys.checkpoint(scopeKey), this.#keys.status(scopeKey));
    return removed > 0;
  }

  /** Scope keys that have any state in Redis (also scopes no longer in the config, or just reset). */
  async knownScopes(): Promise<string[]> {
    const prefix = `${this.#keys.prefix}:scope:`;
    const found = new Set<string>();
    // `<prefix>:scope:<scope key>:<checkpoint|seen|lease|status>`
    for (const key of await keysWithPrefix(this.#redis, prefix)) {
      found.add(key.slice(prefix.length, key.lastIndexOf(':')));
    }
    return [...found].sort();
  }
}
