import type { Logger } from 'pino';
import type { ZodType } from 'zod';
import type { CheckStep } from '../http/check.ts';
import type { RateBudgets } from '../http/rate-budget.ts';
import type { LocatedRecord } from '../otlp/model.ts';
import type { ReceiverAuth } from '../otlp/receiver/auth.ts';
import type { ReceiverTlsFiles } from '../otlp/receiver/tls.ts';
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
  /**
   * Optional: a source whose API reads time ranges can read history in a separate backfill lane
   * (docs/stackit.md). Sources without it simply have no backfill.
   */
  readonly history?: HistorySupport<S>;
  /**
   * Optional: a source whose provider has a hierarchy can find more scopes under a configured one
   * (folders and projects of an organization). Sources without it poll exactly what is configured.
   */
  readonly discovery?: DiscoverySupport<S>;
}

/** A half-open time range `[fromMs, toMs)` of event times, epoch ms. */
export interface TimeRange {
  readonly fromMs: number;
  readonly toMs: number;
}

/**
 * History in a separate lane. The live lane of a scope owns every event at or after its floor, the
 * backfill lane every event before it: each event has exactly one owner, so the two lanes never ship
 * one event twice even though each dedupes only against its own seen-set.
 */
export interface HistorySupport<S = unknown> {
  /**
   * The live lane's floor from its checkpoint: it never reads or ships an event before this time.
   * Undefined before the scope's first poll, or for a checkpoint written before floors existed.
   */
  liveFloorMs(scope: PollScope<S>, checkpoint: Checkpoint | undefined): number | undefined;
  /** History the scope's lookback asked for that its first live poll left to a backfill. */
  owedHistory(scope: PollScope<S>, checkpoint: Checkpoint | undefined): TimeRange | undefined;
  /** The oldest time the provider still serves (retention), for clamping a requested range. */
  retainedFromMs(nowMs: number): number;
  /**
   * Reads `range` oldest first, resuming from the backfill's own checkpoint, with backfill priority in
   * the request budget. Pages' `watermarkMs` is the end of the history read completely; events outside
   * `range` are not returned (they belong to another lane).
   */
  pullRange(
    scope: PollScope<S>,
    range: TimeRange,
    checkpoint: Checkpoint | undefined,
    ctx: PullContext,
  ): AsyncIterable<Page>;
}

/** When and how a configured scope discovers others. */
export interface DiscoveryPlan {
  readonly intervalMs: number;
  /** A discovered scope missing from the walks this long stops being polled. */
  readonly gracePeriodMs: number;
  /** The state of a scope gone this long is deleted. */
  readonly forgetAfterMs: number;
}

export interface DiscoveredScope {
  readonly ref: ScopeRef;
  readonly name?: string | undefined;
}

export interface DiscoverySupport<S = unknown> {
  /** Undefined when the scope does not discover. */
  plan(scope: PollScope<S>): DiscoveryPlan | undefined;
  /**
   * Every scope under `scope` that passes its filters (not `scope` itself). Throws when the walk is
   * incomplete for any reason: a partial answer must never make scopes look deleted.
   */
  discover(
    scope: PollScope<S>,
    ctx: { readonly signal: AbortSignal; readonly log: Logger },
  ): Promise<DiscoveredScope[]>;
  /** The settings a discovered scope is polled with, derived from its root's. */
  childSettings(root: S, ref: ScopeRef): S;
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
  /**
   * Events the provider returned that the page leaves out because they lie outside the time range the
   * request asked for (the source logs them with their ids; the pipeline counts them).
   */
  readonly outsideRange?: number;
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
  /**
   * Request budgets shared by all replicas (Redis). Absent (unit tests, tools that make no requests):
   * no budget, requests go out unpaced.
   */
  readonly rateBudgets?: RateBudgets | undefined;
}

export interface RequestSample {
  readonly provider: string;
  /** Which API of the provider, e.g. `auditlog`, `token`, `resource-manager`. */
  readonly api: string;
  readonly status: number;
  readonly seconds: number;
}

/**
 * A provider that pushes its events to the shipper instead of being polled (the STACKIT Telemetry Router).
 * The source only says how its receiver listens and how one received record becomes an event; the
 * pipeline serves the receiver on every replica and commits each request with the same atomic dedupe
 * and outbox step as a polled page, answering success only once that commit is durable. A push provider
 * has no configured scopes: each record names its own.
 */
export interface PushSupport<P = unknown> {
  receiver(settings: P): PushReceiverSettings;
  /**
   * One received OTLP log record as an event. Never throws and never drops: a record it cannot map
   * fully is returned with `anomalies` (and a content-hash id if it has none) and `mapped: false`.
   */
  map(record: LocatedRecord, ctx: PushMapContext<P>): PushedEvent;
}

export interface PushMapContext<P = unknown> {
  readonly provider: ProviderInstance<P>;
  /** When the request arrived (epoch ms): the time of last resort for a record without one. */
  readonly receivedAtMs: number;
}

export interface PushedEvent {
  readonly event: AuditEvent;
  /** The scope whose seen-set dedupes it: the same key a poller of that scope uses. */
  readonly scopeKey: string;
  /** False when the record lacked something it should have had (see the event's anomalies). */
  readonly mapped: boolean;
}

export interface PushReceiverSettings {
  readonly host: string;
  /** OTLP/HTTP port. */
  readonly port: number;
  /** OTLP/gRPC port; undefined serves no gRPC. */
  readonly grpcPort?: number | undefined;
  readonly tls?: (ReceiverTlsFiles & { readonly reloadIntervalMs: number }) | undefined;
  readonly auth: ReceiverAuth;
  /** Largest request body, on the wire and after decompression. */
  readonly maxBodyBytes: number;
  /** How long (by event time) pushed ids stay in the seen-set of a scope nobody polls. */
  readonly dedupeWindowMs: number;
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
  /** Set for providers that push instead of being polled; they take no scopes. */
  readonly push?: PushSupport<P>;
  /**
   * `auditlog-shipper doctor`: reaches the provider with the configured credentials and reports DNS,
   * TLS, auth, permission and one harmless read per kind of scope given. Optional.
   */
  check?(
    provider: ProviderInstance<P>,
    scopes: readonly PollScope<S>[],
    deps: SourceDeps,
    signal: AbortSignal,
  ): Promise<readonly CheckStep[]>;
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
  readonly push?: PushSupport;
  check?(
    provider: ProviderInstance,
    scopes: readonly PollScope[],
    deps: SourceDeps,
    signal: AbortSignal,
  ): Promise<readonly CheckStep[]>;
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
