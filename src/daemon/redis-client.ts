import { Cluster, Redis } from 'ioredis';
import { parseRedisUrl } from '../config/redis-url.ts';
import type { RedisClient } from '../redis/client.ts';

export interface RedisClientOptions {
  readonly connectionName?: string;
}

/** Backoff between reconnection attempts: quick at first, never slower than every 2 s. */
const retryStrategy = (attempt: number): number => Math.min(2_000, 50 * 2 ** attempt);

/**
 * After a Sentinel failover the old master comes back as a replica and answers writes with READONLY;
 * reconnecting asks the sentinels again and lands on the new master, and the command is resent there.
 */
const reconnectOnReadonly = (error: Error): 2 | false => (error.message.startsWith('READONLY') ? 2 : false);

/**
 * The client for a Redis URL of any accepted form (see `parseRedisUrl`), not yet connected.
 * `maxRetriesPerRequest: null` keeps commands queued while Redis restarts or fails over instead of failing
 * them (BullMQ requires it for workers, and the pipeline wants the same patience).
 */
export function createRedisClient(url: string, options: RedisClientOptions = {}): RedisClient {
  const endpoint = parseRedisUrl(url);
  const common = {
    lazyConnect: true,
    maxRetriesPerRequest: null,
    ...(options.connectionName !== undefined ? { connectionName: options.connectionName } : {}),
  };
  switch (endpoint.kind) {
    case 'standalone':
      return new Redis(url, { ...common, retryStrategy });
    case 'sentinel':
      return new Redis({
        ...common,
        retryStrategy,
        sentinelRetryStrategy: retryStrategy,
        sentinels: endpoint.sentinels.map(({ host, port }) => ({ host, port })),
        name: endpoint.masterName,
        db: endpoint.db,
        ...(endpoint.username !== undefined ? { username: endpoint.username } : {}),
        ...(endpoint.password !== undefined ? { password: endpoint.password } : {}),
        ...(endpoint.sentinelPassword !== undefined ? { sentinelPassword: endpoint.sentinelPassword } : {}),
        ...(endpoint.tls ? { tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true } : {}),
        // Listen for the sentinels' +switch-master instead of waiting for the old master to fail a command.
        failoverDetector: true,
        reconnectOnError: reconnectOnReadonly,
      });
    case 'cluster':
      return new Cluster(
        endpoint.nodes.map(({ host, port }) => ({ host, port })),
        {
          lazyConnect: true,
          clusterRetryStrategy: retryStrategy,
          // A slot moving during a failover answers MOVED/CLUSTERDOWN for a moment: retry, do not fail.
          retryDelayOnFailover: 200,
          retryDelayOnClusterDown: 200,
          retryDelayOnTryAgain: 200,
          slotsRefreshTimeout: 2_000,
          redisOptions: {
            maxRetriesPerRequest: null,
            ...(options.connectionName !== undefined ? { connectionName: options.connectionName } : {}),
            ...(endpoint.username !== undefined ? { username: endpoint.username } : {}),
            ...(endpoint.password !== undefined ? { password: endpoint.password } : {}),
            ...(endpoint.tls ? { tls: {} } : {}),
          },
        },
      );
  }
}
