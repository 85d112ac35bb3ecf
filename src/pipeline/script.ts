import { createHash } from 'node:crypto';
import type { RedisClient } from '../redis/client.ts';

type Arg = string | number | Buffer;

/**
 * A Lua script run by its SHA (EVALSHA), loaded on first use and again after a Redis restart flushed
 * the script cache. Large scripts run on every page, so resending their source each time would be waste.
 */
export class LuaScript {
  readonly #source: string;
  readonly #sha: string;

  constructor(source: string) {
    this.#source = source;
    this.#sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: RedisClient, keys: readonly string[], args: readonly Arg[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.#sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return await redis.eval(this.#source, keys.length, ...keys, ...args);
    }
  }
}
