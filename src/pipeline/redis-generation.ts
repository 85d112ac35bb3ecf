import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Metrics } from '../observability/metrics.ts';
import type { RedisClient } from '../redis/client.ts';
import type { RedisKeys } from './keys.ts';

export interface RedisGenerationOptions {
  readonly redis: RedisClient;
  readonly keys: RedisKeys;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** How often the marker is checked (it is also checked each time the connection is ready again). */
  readonly intervalMs: number;
  /** Re-creates what the process needs after a loss (consumer groups, schedules); errors are logged. */
  readonly onLost: () => Promise<void>;
}

/**
 * Notices that Redis lost its state under a running process. A random generation marker is written when
 * none exists; a later check that finds it gone or replaced (another replica noticed first and wrote a
 * new one) means every checkpoint, seen-set, outbox and lease went with it: polls restart from their
 * lookback, and sinks that cannot deduplicate may receive events twice. That is said in an error log and
 * `auditlog_redis_state_lost_total`, and `onLost` re-creates the streams and groups delivery needs.
 */
export class RedisGenerationWatch {
  readonly #o: RedisGenerationOptions;
  #current: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #checking: Promise<void> | undefined;
  readonly #onReady = (): void => void this.check().catch(() => undefined);

  constructor(options: RedisGenerationOptions) {
    this.#o = options;
  }

  /** The generation this process works in. */
  get current(): string | undefined {
    return this.#current;
  }

  async start(): Promise<void> {
    const { created, value } = await this.#adopt();
    this.#current = value;
    if (created) {
      this.#o.log.info({ generation: value }, 'Redis holds no shipper generation marker yet; wrote one');
    }
    this.#timer = setInterval(this.#onReady, this.#o.intervalMs);
    this.#timer.unref();
    this.#o.redis.on('ready', this.#onReady);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#o.redis.off('ready', this.#onReady);
  }

  /** Compares the marker with the one this process knows; one check at a time. */
  check(): Promise<void> {
    this.#checking ??= this.#check().finally(() => {
      this.#checking = undefined;
    });
    return this.#checking;
  }

  async #check(): Promise<void> {
    const before = this.#current;
    const { value } = await this.#adopt();
    if (value === before) return;
    this.#current = value;
    this.#o.metrics.redisStateLost.inc();
    this.#o.log.error(
      { previousGeneration: before, generation: value },
      'Redis lost its state (its generation marker is gone or was replaced: a failover to an empty replica, ' +
        'a restart without persistence, FLUSHALL?): checkpoints restart from lookback, events read again ' +
        'are sent again, so duplicates are possible at sinks that cannot dedupe; events that were waiting in ' +
        'outboxes and are older than the lookback are not read again',
    );
    try {
      await this.#o.onLost();
    } catch (error) {
      this.#o.log.error({ err: error }, 'could not re-create delivery state after Redis lost its state');
    }
  }

  /** The marker in Redis, written first if there is none (SET NX, so concurrent writers agree). */
  async #adopt(): Promise<{ created: boolean; value: string }> {
    const { redis, keys } = this.#o;
    for (;;) {
      // SET NX GET would do this in one step, but needs Redis 7; the shipper supports 6.2.
      const fresh = randomBytes(8).toString('hex');
      if ((await redis.set(keys.generation(), fresh, 'NX')) === 'OK') return { created: true, value: fresh };
      const existing = await redis.get(keys.generation());
      if (existing !== null) return { created: false, value: existing };
    }
  }
}
