import type { Cluster, Redis } from 'ioredis';

/**
 * A connection to the shipper's Redis: one server or a Sentinel group (both `Redis`), or a Redis Cluster.
 * Everything the pipeline runs works on either, because every script's keys share the prefix's hash tag
 * and so one slot.
 */
export type RedisClient = Redis | Cluster;

/**
 * Another connection to the same Redis with the same options (a blocking reader, BullMQ). `Redis` and
 * `Cluster` spell `duplicate` differently; this hides the difference.
 */
export function duplicateClient(redis: RedisClient, connectionName?: string): RedisClient {
  // A cluster's per-node options are one object shared by its node connections; they keep the first name.
  if (isCluster(redis)) return redis.duplicate();
  return redis.duplicate(connectionName ? { connectionName } : {});
}

export function isCluster(redis: RedisClient): redis is Cluster {
  return redis.isCluster;
}

/** How long a write may wait for a replica's acknowledgement before it counts as not durable. */
const REPLICA_ACK_TIMEOUT_MS = 5_000;

/** A write Redis took but no replica confirmed: a failover now could lose it, so it must not count yet. */
export class NotReplicatedError extends Error {
  constructor(what: string) {
    super(
      `${what}: no replica confirmed the write within ${REPLICA_ACK_TIMEOUT_MS} ms (Sentinel failover under way, or the replica is down); it is retried`,
    );
    this.name = 'NotReplicatedError';
  }
}

/**
 * Behind a Sentinel group, replication is asynchronous: a failover promotes a replica that may lack the
 * master's last writes. A checkpoint that moved on the old master and vanished with it is harmless alone
 * (the page is read again), but a poll that goes on from it would commit the next page on the new master
 * and skip the lost one. So writes that later steps build on (a page's commit, a lease's fencing token)
 * wait here until a replica has them (`WAIT 1`); Sentinel promotes the most up-to-date replica. Without
 * Sentinel this does nothing: a single server has no replica to wait for, and a Cluster routes `WAIT`
 * to an arbitrary node.
 */
export async function awaitReplica(redis: RedisClient, what: string): Promise<void> {
  if (isCluster(redis) || (redis.options.sentinels?.length ?? 0) === 0) return;
  const acknowledged = (await redis.call('WAIT', 1, REPLICA_ACK_TIMEOUT_MS)) as number;
  if (acknowledged < 1) throw new NotReplicatedError(what);
}

/**
 * Every key that starts with `prefix` (SCAN, never KEYS). On a Cluster, SCAN walks one node only, so
 * every master is walked; with the hash-tagged prefix the keys all live on one of them.
 */
export async function keysWithPrefix(redis: RedisClient, prefix: string): Promise<string[]> {
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  const nodes = isCluster(redis) ? redis.nodes('master') : [redis];
  const found = new Set<string>();
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) found.add(key);
    } while (cursor !== '0');
  }
  return [...found].sort();
}
