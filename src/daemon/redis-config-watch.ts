import type { Logger } from 'pino';
import type { Metrics } from '../observability/metrics.ts';
import type { RedisClient } from '../redis/client.ts';

/** How often the eviction policy is read again while the daemon runs. */
export const EVICTION_RECHECK_MS = 60_000;

/**
 * Re-reads Redis's `maxmemory-policy` while the daemon runs. The start refuses an evicting Redis, but
 * `CONFIG SET` (or a managed service's parameter change) can turn eviction on later, and then Redis may
 * silently drop undelivered outbox entries and checkpoints. A change is an error log line and the
 * `auditlog_redis_eviction_unsafe` gauge (alert: AuditlogRedisEvicting); going back to noeviction is
 * logged too. A Redis that refuses CONFIG (managed services) is left alone, as at start.
 */
export class RedisEvictionWatch {
  readonly #redis: RedisClient;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #unsafePolicy: string | undefined;
  #checking = false;

  constructor(redis: RedisClient, log: Logger, metrics: Metrics, intervalMs = EVICTION_RECHECK_MS) {
    this.#redis = redis;
    this.#log = log;
    this.#metrics = metrics;
    this.#intervalMs = intervalMs;
  }

  start(): void {
    this.#metrics.redisEvictionUnsafe.set(0);
    this.#timer = setInterval(() => void this.check(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One check; skipped while Redis is unreachable (its commands would only queue). */
  async check(): Promise<void> {
    if (this.#checking || this.#redis.status !== 'ready') return;
    this.#checking = true;
    try {
      const policy = ((await this.#redis.config('GET', 'maxmemory-policy')) as string[])[1];
      if (policy === undefined) return;
      if (policy !== 'noeviction') {
        this.#metrics.redisEvictionUnsafe.set(1);
        if (this.#unsafePolicy !== policy) {
          this.#log.error(
            { policy },
            `Redis maxmemory-policy changed to "${policy}" at run time: it may evict undelivered events and ` +
              'checkpoints. Set "maxmemory-policy noeviction" again (CONFIG SET and the Redis config file)',
          );
        }
        this.#unsafePolicy = policy;
      } else {
        this.#metrics.redisEvictionUnsafe.set(0);
        if (this.#unsafePolicy !== undefined) {
          this.#log.info(`Redis maxmemory-policy is noeviction again (was "${this.#unsafePolicy}")`);
        }
        this.#unsafePolicy = undefined;
      }
    } catch {
      // CONFIG refused (managed Redis) or Redis went away meanwhile: nothing to tell from here.
    } finally {
      this.#checking = false;
    }
  }
}
