import type { Logger } from 'pino';
import type { ZodType } from 'zod';
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
}

export interface SinkDeps {
  readonly log: Logger;
  /** Unique per process; sinks that write local files use it to keep replicas apart. */
  readonly instanceId: string;
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
}

export interface AnySinkModule {
  readonly type: string;
  readonly description: string;
  readonly schema: ZodType;
  create(instance: SinkInstance, deps: SinkDeps): Sink;
}

export function defineSink<C>(module: SinkModule<C>): AnySinkModule {
  return module as unknown as AnySinkModule;
}
