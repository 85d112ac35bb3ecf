import type { Logger } from 'pino';
import { redactRedisUrl } from '../config/redis-url.ts';
import { duplicateClient, isCluster, type RedisClient } from '../redis/client.ts';
import { createRedisClient } from './redis-client.ts';

/** A failed first connection; `retryable` unless Redis refused the credentials (waiting cannot fix that). */
export class RedisConnectError extends Error {
  readonly retryable: boolean;

  constructor(message: string, retryable: boolean, cause: unknown) {
    super(message, { cause });
    this.name = 'RedisConnectError';
    this.retryable = retryable;
  }
}

/** Redis's answers to a wrong or missing password (AUTH, HELLO), as opposed to an unreachable server. */
const AUTH_FAILURE = /^(WRONGPASS|NOAUTH|ERR invalid password|ERR AUTH|ERR Client sent AUTH)/;

/**
 * A connection for one role. `maxRetriesPerRequest: null` keeps commands queued while Redis restarts
 * instead of failing them (BullMQ requires it for workers, and the pipeline wants the same patience).
 */
export async function connectRedis(url: string, role: string, log: Logger): Promise<RedisClient> {
  // One server, a Sentinel group or a Cluster, as the URL says (see redis-client.ts).
  const redis = createRedisClient(url, { connectionName: `auditlog-shipper:${role}` });
  // ioredis rejects a failed connect with "Connection is closed."; the reason is in the error event.
  let reason: Error | undefined;
  const remember = (error: Error): void => {
    reason ??= error;
  };
  redis.on('error', remember);
  watchConnection(redis, role, log);
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    const cause = reason ?? (error as Error);
    if (AUTH_FAILURE.test(cause.message)) {
      throw new RedisConnectError(
        `Redis at ${redactRedisUrl(url)} refused the credentials: authentication failed (${cause.message.split('.')[0]}); ` +
          'check the password (and user) in REDIS_URL',
        false,
        cause,
      );
    }
    throw new RedisConnectError(
      `cannot connect to Redis at ${redactRedisUrl(url)}: ${cause.message}`,
      true,
      cause,
    );
  } finally {
    redis.off('error', remember);
  }
  return redis;
}

/** Another connection to the same server (blocking reads, BullMQ), with its errors handled like the first. */
export function duplicateRedis(redis: RedisClient, role: string, log: Logger): RedisClient {
  const copy = duplicateClient(redis, `auditlog-shipper:${role}`);
  watchConnection(copy, role, log);
  return copy;
}

/**
 * Says once when a working connection is lost and once when it is back: an operator sees a Redis outage
 * as two lines per connection, not as silence (commands wait meanwhile) or as one line per retry.
 */
function watchConnection(redis: RedisClient, role: string, log: Logger): void {
  let wasReady = false;
  let lost = false;
  redis.on('error', (error: Error) => log.debug({ role, err: error.message }, 'redis connection error'));
  redis.on('ready', () => {
    if (lost) log.info({ role }, `redis connection (${role}) is back`);
    wasReady = true;
    lost = false;
  });
  // 'reconnecting', not 'close': a connection closed on purpose (shutdown, QUIT) does not reconnect.
  redis.on('reconnecting', () => {
    if (!wasReady || lost) return;
    lost = true;
    log.warn({ role }, `lost the redis connection (${role}); reconnecting, commands wait meanwhile`);
  });
}

/**
 * Refuses a Redis that could lose data without telling anyone: eviction would drop undelivered outbox
 * entries and checkpoints. Warns when persistence is off. Managed services that forbid CONFIG get a
 * warning instead of a refusal.
 */
export async function checkRedisServer(redis: RedisClient, log: Logger): Promise<void> {
  // Every master of a cluster holds data (the prefix's slot may move to any of them).
  if (isCluster(redis)) {
    for (const node of redis.nodes('master')) await checkRedisServer(node, log);
    return;
  }
  const info = await redis.info('server');
  const version = /redis_version:(\d+)\.(\d+)/.exec(info);
  if (version && (Number(version[1]) < 6 || (Number(version[1]) === 6 && Number(version[2]) < 2))) {
    throw new Error(`Redis ${version[1]}.${version[2]} is too old: the shipper needs Redis 6.2 or newer`);
  }
  let policy: string | undefined;
  let aof: string | undefined;
  try {
    policy = ((await redis.config('GET', 'maxmemory-policy')) as string[])[1];
    aof = ((await redis.config('GET', 'appendonly')) as string[])[1];
  } catch (error) {
    log.warn(
      { err: (error as Error).message },
      'cannot read Redis CONFIG; make sure maxmemory-policy is noeviction and AOF persistence is on',
    );
    return;
  }
  if (policy !== undefined && policy !== 'noeviction') {
    throw new Error(
      `Redis maxmemory-policy is "${policy}": it could evict undelivered events and checkpoints. ` +
        'Set "maxmemory-policy noeviction" (the only safe setting for the shipper and BullMQ).',
    );
  }
  if (aof === 'no') {
    log.warn(
      'Redis runs without AOF (appendonly no): a Redis restart can lose recent checkpoints and undelivered events',
    );
  }
}
