import type { Logger } from 'pino';
import type { ZodType } from 'zod';
import type { CheckStep } from '../http/check.ts';
import type { OutboxEvent } from '../pipeline/envelope.ts';

/** What happened to one event of a batch. */
export type Verdict =
  | { readonly kind: 'delivered' }
  /** The sink already had it (ES 409 on create, S3 412): as good as delivered. */
  | { readonly kind: 'duplicate' }
  /** Transient: send it again later, no sooner than `retryAfterMs` if given. */
  | { readonly kind: 'retry'; readonly reason: string; readonly retryAfterMs?: number }
  /** Permanent for this event: it goes to the sink's dead-letter stream with the reason. */
  | { readonly kind: 'rejected'; readonly reason: string };

/**
 * How a sink wants its events grouped. The delivery worker forms batches within these limits; a sink that
 * leaves a field out gets the daemon's default (`daemon.delivery.batchSize` events, no byte limit, no
 * linger, one batch in flight).
 */
export interface BatchPolicy {
  /** Most events in one `send`. */
  readonly maxEvents: number;
  /** Most bytes of event lines (UTF-8) in one `send`; a single larger event is still sent alone. */
  readonly maxBytes: number;
  /** A batch that is not full waits until its oldest event has been in the outbox this long. */
  readonly lingerMs: number;
  /** Batches in flight at once. Events with one `partitionKey` are never in flight concurrently. */
  readonly concurrency: number;
  /**
   * Once a batch has been sent, it is re-sent with exactly the same events after a crash (its composition
   * is recorded in Redis before the first attempt). Sinks whose idempotency hangs on the batch's content,
   * such as S3's content-derived object keys, need this; sinks that dedupe per event do not.
   */
  readonly stableBatches: boolean;
}

/**
 * The one contract a sink implements. `send` returns one verdict per event, in batch order; throwing
 * means "retry the whole batch" (a network error, a 5xx). A sink never drops an event silently: an event
 * it cannot take gets a `rejected` verdict naming why.
 */
export interface Sink {
  readonly name: string;
  /** Opens files, checks reachability. Called once before the first `send`. */
  start(): Promise<void>;
  send(batch: readonly OutboxEvent[], signal: AbortSignal): Promise<readonly Verdict[]>;
  close(): Promise<void>;
  /** Batching wishes; missing fields fall back to the daemon's defaults. */
  readonly batching?: Partial<BatchPolicy>;
  /**
   * Events with the same key are delivered in outbox order, one batch at a time (e.g. one Loki stream);
   * without it any batch may go to any of the `concurrency` slots.
   */
  partitionKey?(event: OutboxEvent): string;
}

/** One request a sink made, for the per-sink request metrics. */
export interface SinkRequestSample {
  /** e.g. `push`, `bulk`, `put_object`. */
  readonly operation: string;
  /** The HTTP status, or `error` when no response came (timeout, network). */
  readonly status: string;
  readonly seconds: number;
}

export interface SinkDeps {
  readonly log: Logger;
  /** Unique per process; sinks that write local files use it to keep replicas apart. */
  readonly instanceId: string;
  /** Reports each request to the metrics; absent in tests that do not care. */
  readonly onRequest?: (sample: SinkRequestSample) => void;
}

export interface SinkInstance<C = unknown> {
  readonly name: string;
  readonly type: string;
  readonly settings: C;
}

/** What a sink folder exports. `schema` validates a `sinks[]` entry without the common `name` and `type`. */
export interface SinkModule<C> {
  readonly type: string;
  readonly description: string;
  readonly schema: ZodType<C>;
  create(instance: SinkInstance<C>, deps: SinkDeps): Sink;
  /**
   * `auditlog-shipper doctor`: reaches the store with the configured credentials and reports DNS, TLS,
   * auth, permission and one harmless write. Optional; a sink without it is reported as not checked.
   */
  check?(instance: SinkInstance<C>, deps: SinkDeps, signal: AbortSignal): Promise<readonly CheckStep[]>;
}

export interface AnySinkModule {
  readonly type: string;
  readonly description: string;
  readonly schema: ZodType;
  create(instance: SinkInstance, deps: SinkDeps): Sink;
  check?(instance: SinkInstance, deps: SinkDeps, signal: AbortSignal): Promise<readonly CheckStep[]>;
}

export function defineSink<C>(module: SinkModule<C>): AnySinkModule {
  return module as unknown as AnySinkModule;
}
