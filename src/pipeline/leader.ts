import type { RedisClient } from '../redis/client.ts';

const RENEW_OR_ACQUIRE = `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`;

const RESIGN = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * One process among the replicas is leader, by a Redis key with a TTL it keeps renewing. Job schedulers
 * are reconciled from the leader alone: concurrent upserts from several replicas are where BullMQ's
 * scheduler races live (bullmq#3085, #2876, #3262).
 */
export class LeaderLock {
  readonly #redis: RedisClient;
  readonly #key: string;
  readonly #holder: string;
  readonly #ttlMs: number;

  constructor(redis: RedisClient, key: string, holder: string, ttlMs: number) {
    this.#redis = redis;
    this.#key = key;
    this.#holder = holder;
    this.#ttlMs = ttlMs;
  }

  /** Renews leadership if held, takes it if free; true when this process leads. */
  async tryLead(): Promise<boolean> {
    return (await this.#redis.eval(RENEW_OR_ACQUIRE, 1, this.#key, this.#holder, this.#ttlMs)) === 1;
  }

  async resign(): Promise<void> {
    await this.#redis.eval(RESIGN, 1, this.#key, this.#holder);
  }
}
