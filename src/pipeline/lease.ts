import { randomBytes } from 'node:crypto';
import { awaitReplica, type RedisClient } from '../redis/client.ts';
import type { RedisKeys } from './keys.ts';

const ACQUIRE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local token = redis.call('INCR', KEYS[2]) .. '-' .. ARGV[2]
redis.call('SET', KEYS[1], token, 'PX', ARGV[1])
return token`;

const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * Per-scope leases with fencing tokens: at most one poll of a scope runs at a time across every replica
 * (BullMQ cannot promise that for schedulers). The commit script refuses a page unless the lease still
 * holds the poll's token, so a poll that stalled past its lease (GC pause, partition) can no longer write
 * anything. A token is `<counter>-<random>`: the counter numbers tokens for people reading logs, the
 * random part keeps every token unique across any loss of Redis state. A counter alone repeats when
 * Redis loses it: a host crash rolls back the last second of AOF, an empty replica starts from 0, and a
 * token handed out before the loss would be handed out again, to a second poll of the same scope.
 */
export class LeaseManager {
  readonly #redis: RedisClient;
  readonly #keys: RedisKeys;

  constructor(redis: RedisClient, keys: RedisKeys) {
    this.#redis = redis;
    this.#keys = keys;
  }

  /** Takes the scope's lease, or returns undefined if another poll holds it. */
  async acquire(scopeKey: string, ttlMs: number): Promise<Lease | undefined> {
    const key = this.#keys.lease(scopeKey);
    const nonce = randomBytes(8).toString('hex');
    const token = (await this.#redis.eval(ACQUIRE, 2, key, this.#keys.fence(), ttlMs, nonce)) as
      | string
      | null;
    // A lease lost in a failover could be taken by a second poll; the random part keeps tokens apart.
    if (token !== null) await awaitReplica(this.#redis, `lease of ${scopeKey}`);
    return token === null ? undefined : new Lease(this.#redis, key, String(token), ttlMs);
  }
}

export class Lease {
  readonly key: string;
  readonly token: string;
  readonly ttlMs: number;
  readonly #redis: RedisClient;

  constructor(redis: RedisClient, key: string, token: string, ttlMs: number) {
    this.#redis = redis;
    this.key = key;
    this.token = token;
    this.ttlMs = ttlMs;
  }

  /** Extends the lease; false when it was lost (expired and possibly taken by another poll). */
  async renew(): Promise<boolean> {
    return (await this.#redis.eval(RENEW, 1, this.key, this.token, this.ttlMs)) === 1;
  }

  async release(): Promise<void> {
    await this.#redis.eval(RELEASE, 1, this.key, this.token);
  }

  /**
   * Renews every third of the TTL until stopped; calls `onLost` once if a renewal finds the lease gone
   * or cannot reach Redis before the lease would expire.
   */
  keepAlive(onLost: (why: string) => void): () => void {
    let stopped = false;
    let lastRenewed = Date.now();
    const timer = setInterval(
      () => {
        this.renew().then(
          (held) => {
            if (stopped) return;
            if (held) lastRenewed = Date.now();
            else {
              stopped = true;
              clearInterval(timer);
              onLost('the lease expired and was taken over');
            }
          },
          (error: unknown) => {
            if (stopped || Date.now() - lastRenewed < this.ttlMs) return;
            stopped = true;
            clearInterval(timer);
            onLost(`could not renew the lease: ${error instanceof Error ? error.message : String(error)}`);
          },
        );
      },
      Math.max(100, Math.floor(this.ttlMs / 3)),
    );
    timer.unref();
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }
}
