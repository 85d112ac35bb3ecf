/**
 * Every Redis key the shipper owns, in one place. All share one prefix that carries a hash tag (e.g.
 * `{auditlog}`), so the keys one Lua script touches live in one Redis Cluster slot.
 */
export class RedisKeys {
  readonly prefix: string;

  constructor(prefix: string) {
    this.prefix = prefix;
  }

  /** Hash: the scope's checkpoint, fenced by the lease token that wrote it. */
  checkpoint(scopeKey: string): string {
    return `${this.prefix}:scope:${scopeKey}:checkpoint`;
  }

  /** Sorted set: event ids already committed, scored by event time, trimmed by time. */
  seen(scopeKey: string): string {
    return `${this.prefix}:scope:${scopeKey}:seen`;
  }

  /**
   * Hash: event id → SHA-256 of its raw bytes, beside the seen-set and trimmed with it, so the same id
   * with other bytes is recognised as a conflict rather than a duplicate.
   */
  seenDigests(scopeKey: string): string {
    return `${this.prefix}:scope:${scopeKey}:seen-digests`;
  }

  /**
   * Sorted sets for the poll → push migration view: ids of recent events the push path received and the
   * poll path read (id → event time), bounded by time and count. Informational, never used to dedupe.
   */
  pushedIds(scopeKey: string): string {
    return `${this.prefix}:scope:${scopeKey}:via:push`;
  }

  polledIds(scopeKey: string): string {
    return `${this.prefix}:scope:${scopeKey}:via:poll`;
  }

  /** String: the fencing token of the poll that holds the scope. */
  lease(scopeKey: string): string {
    return `${this.prefix}:scope:${scopeKey}:lease`;
  }

  /** Hash: last poll outcome, for `state show` and operators; informational, not fenced. */
  status(scopeKey: string): string {
    return `${this.prefix}:scope:${scopeKey}:status`;
  }

  /**
   * String: a random id written when the shipper first finds this Redis without one. If it vanishes or
   * changes under a running process, Redis lost its state (an empty replica, a restart without
   * persistence, FLUSHALL).
   */
  generation(): string {
    return `${this.prefix}:generation`;
  }

  /** Counter that numbers fencing tokens (each token also carries a random part, see lease.ts). */
  fence(): string {
    return `${this.prefix}:fence`;
  }

  /** Stream: events committed for a sink and not yet acknowledged by it. */
  outbox(sink: string): string {
    return `${this.prefix}:outbox:${sink}`;
  }

  /** Stream: events a sink rejected for good, with the reason. */
  deadLetter(sink: string): string {
    return `${this.prefix}:dlq:${sink}`;
  }

  /** String with a TTL: a delivery consumer is alive while this exists. */
  consumerHeartbeat(sink: string, consumer: string): string {
    return `${this.prefix}:consumer:${sink}:${consumer}`;
  }

  /** String: which process reconciles the job schedulers. */
  leader(): string {
    return `${this.prefix}:leader`;
  }

  /** Hash: a request budget (token bucket) shared by all replicas, e.g. `stackit:sa-<id>:auditlog`. */
  rateBucket(id: string): string {
    return `${this.prefix}:ratelimit:${id}`;
  }

  /** Hash: scope key → JSON of a scope found by discovery (its root, first/last seen, missing/gone since). */
  discoveredScopes(): string {
    return `${this.prefix}:discovery:scopes`;
  }

  /** Hash: discovery root scope key → JSON of its last walk (version, when, error). */
  discoveryRoots(): string {
    return `${this.prefix}:discovery:roots`;
  }

  /** Hash: discovery root scope key → when a poll asked for an early walk (a discovered scope said 404). */
  discoveryRechecks(): string {
    return `${this.prefix}:discovery:recheck`;
  }

  /** Hash: the backfill run of a scope (range, status, job). */
  backfill(scopeKey: string): string {
    return `${this.prefix}:backfills:${scopeKey}`;
  }

  /** Set: scope keys that have a backfill record. */
  backfills(): string {
    return `${this.prefix}:backfills`;
  }
}

/** The consumer group every delivery worker of a sink joins. */
export const DELIVERY_GROUP = 'delivery';
