import type { Logger } from 'pino';
import type { ZodType } from 'zod';
import type { AuditEvent, ScopeRef } from '../pipeline/envelope.ts';

/**
 * The one contract a provider implements. A source knows its provider's API: windowing, pagination,
 * auth, quirks. It knows nothing about Redis, queues or sinks; the pipeline commits each page it yields
 * atomically with its checkpoint, and only then asks for the next one.
 */
export interface Source<S = unknown> {
  /**
   * Yields pages of new events starting from `checkpoint` (undefined on a scope's first poll). The
   * generator is suspended while a page is committed, so it must not assume a page was kept until it
   * is asked for the next one, and a poll may stop after any page (shutdown, backpressure, lease loss).
   */
  pull(scope: PollScope<S>, checkpoint: Checkpoint | undefined, ctx: PullContext): AsyncIterable<Page>;
  close(): Promise<void>;
}

export interface PollScope<S = unknown> {
  /** Stable identity of the scope's state in Redis, e.g. `stackit:project:<uuid>`. */
  readonly key: string;
  /** Name of the configured provider instance. */
  readonly provider: string;
  readonly ref: ScopeRef;
  /** Source-specific settings, already validated by the module's `scopeSchema`. */
  readonly settings: S;
}

/** Where a scope's log has been read up to. Persisted in the same atomic step as the page's events. */
export interface Checkpoint {
  /** Source-owned, JSON-serializable progress (time windows, provider cursors). */
  readonly state: unknown;
  /** Every event with an earlier time is committed (epoch ms). Drives the lag metric and `state show`. */
  readonly watermarkMs?: number;
}

export interface Page {
  readonly events: readonly AuditEvent[];
  /** The checkpoint to persist once these events are committed. */
  readonly checkpoint: Checkpoint;
  /** Ids of events older than this (epoch ms) can never be returned again and may leave the seen-set. */
  readonly forgetSeenBeforeMs: number;
}

export interface PullContext {
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** Wall clock in epoch ms; injected so windowing is testable. */
  readonly now: () => number;
  /**
   * Only when the scope has no checkpoint but its seen-set still holds ids (the checkpoint was reset or
   * lost): the event time of the newest of them, i.e. how far the forgotten checkpoint had delivered.
   * A source can restart near there instead of skipping what came after it.
   */
  readonly newestSeenMs?: number | undefined;
}

export interface SourceDeps {
  readonly log: Logger;
  /** Unique per process; sent in the User-Agent so provider-side logs tell replicas apart. */
  readonly instanceId: string;
  /** Reports every provider HTTP call (metrics); a status of 0 means no response arrived. */
  readonly onRequest: (sample: RequestSample) => void;
}

export interface RequestSample {
  readonly provider: string;
  /** Which API of the provider, e.g. `auditlog`, `token`, `resource-manager`. */
  readonly api: string;
  readonly status: number;
  readonly seconds: number;
}

/**
 * What a provider folder exports. `providerSchema` validates a `providers[]` entry (without the common
 * `name`, `type` and `interval` keys), `scopeSchema` a `scopes[]` entry (without `provider`, `sinks`,
 * `interval`).
 */
export interface SourceModule<P, S> {
  readonly type: string;
  readonly description: string;
  readonly providerSchema: ZodType<P>;
  readonly scopeSchema: ZodType<S>;
  scopeRef(scope: S): ScopeRef;
  /**
   * Values at most one scope of this type may hold, e.g. a credential that implies which scope it reads:
   * the config loader reports a scope that repeats another's claim. Return digests, never secrets.
   */
  exclusiveClaims?(scope: S): readonly ScopeClaim[];
  create(provider: ProviderInstance<P>, deps: SourceDeps): Source<S>;
}

export interface ScopeClaim {
  /** Compared across every scope of the config; prefix it with the provider type. */
  readonly key: string;
  /** Names the claim in the error, e.g. `API token`. */
  readonly what: string;
  /** Why it must be unique / what to do, appended to the error. */
  readonly hint?: string;
}

export interface ProviderInstance<P = unknown> {
  readonly name: string;
  readonly type: string;
  readonly settings: P;
}

/** A module with its type parameters erased, as the registry holds it. */
export interface AnySourceModule {
  readonly type: string;
  readonly description: string;
  readonly providerSchema: ZodType;
  readonly scopeSchema: ZodType;
  scopeRef(scope: unknown): ScopeRef;
  exclusiveClaims?(scope: unknown): readonly ScopeClaim[];
  create(provider: ProviderInstance, deps: SourceDeps): Source;
}

/**
 * Erases a module's types for the registry. Safe because the config loader only hands a module values
 * its own schemas produced.
 */
export function defineSource<P, S>(module: SourceModule<P, S>): AnySourceModule {
  return module as unknown as AnySourceModule;
}

/** `stackit:project:2f3c…`: provider type, scope kind and id, so renaming a provider keeps the state. */
export function scopeKey(type: string, ref: ScopeRef): string {
  return `${type}:${ref.kind}:${ref.id}`;
}
