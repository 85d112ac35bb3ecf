import type { RedisClient } from '../redis/client.ts';
import { DELIVERY_GROUP, type RedisKeys } from './keys.ts';

export interface OutboxDepth {
  readonly sink: string;
  /** Entries not yet acknowledged by the sink (waiting plus in flight). */
  readonly length: number;
  /** Age of the oldest entry (ms), 0 when empty. */
  readonly oldestAgeMs: number;
  readonly deadLettered: number;
}

/** Read-only views of the outbox streams: backpressure checks and depths for metrics and `status`. */
export class OutboxMonitor {
  readonly #redis: RedisClient;
  readonly #keys: RedisKeys;

  constructor(redis: RedisClient, keys: RedisKeys) {
    this.#redis = redis;
    this.#keys = keys;
  }

  /** The fullest of these sinks' outboxes if it holds `cap` entries or more. */
  async fullestOver(
    sinks: readonly string[],
    cap: number,
  ): Promise<{ sink: string; length: number } | undefined> {
    if (sinks.length === 0) return undefined;
    const pipeline = this.#redis.pipeline();
    for (const sink of sinks) pipeline.xlen(this.#keys.outbox(sink));
    const results = (await pipeline.exec()) ?? [];
    let fullest: { sink: string; length: number } | undefined;
    results.forEach(([error, length], i) => {
      if (error) throw error;
      const n = Number(length);
      if (n >= cap && (!fullest || n > fullest.length)) fullest = { sink: sinks[i] as string, length: n };
    });
    return fullest;
  }

  async depth(sink: string, nowMs: number = Date.now()): Promise<OutboxDepth> {
    const key = this.#keys.outbox(sink);
    const [length, oldest, deadLettered] = await Promise.all([
      this.#redis.xlen(key),
      this.#redis.xrange(key, '-', '+', 'COUNT', 1),
      this.#redis.xlen(this.#keys.deadLetter(sink)),
    ]);
    const oldestId = oldest[0]?.[0];
    const oldestMs = oldestId ? Number(oldestId.split('-')[0]) : nowMs;
    return { sink, length, oldestAgeMs: Math.max(0, nowMs - oldestMs), deadLettered };
  }

  /** Creates the sink's stream and consumer group if missing; existing groups keep their position. */
  async ensureGroup(sink: string): Promise<void> {
    try {
      await this.#redis.xgroup('CREATE', this.#keys.outbox(sink), DELIVERY_GROUP, '0', 'MKSTREAM');
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('BUSYGROUP')) throw error;
    }
  }
}
