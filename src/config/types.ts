import type { ScopeRef } from '../pipeline/envelope.ts';
import type { SinkInstance } from '../sinks/sink.ts';
import type { ProviderInstance } from '../sources/source.ts';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** The `daemon:` section: process-wide settings, each overridable from the environment (convict). */
export interface DaemonSettings {
  /** Unique per process; names the delivery consumer and tags logs. */
  readonly instanceId: string;
  /** Where the embedded redis-server and default file sinks keep their data. */
  readonly dataDir: string;
  readonly redis: {
    /** Empty: start an embedded redis-server in `dataDir` (single process only). */
    readonly url: string;
    /** Prefix of every key, with a hash tag so one script's keys share a Redis Cluster slot. */
    readonly prefix: string;
  };
  readonly log: { readonly level: LogLevel };
  readonly metrics: {
    readonly host: string;
    /** 0 turns the HTTP server off. */
    readonly port: number;
    /** Per-scope labels on per-scope metrics; off for very large fleets. */
    readonly perScopeLabels: boolean;
  };
  readonly poll: {
    /** Poll jobs one process runs at once. */
    readonly concurrency: number;
    /** A poll's lease on its scope; renewed at a third of it while the poll runs. */
    readonly leaseTtlMs: number;
    /** Default poll interval for scopes that set none. */
    readonly intervalMs: number;
    /** A scope that answered 404 is polled only this often until it answers again. */
    readonly notFoundRecheckMs: number;
  };
  readonly backfill: {
    /** Backfill jobs this process runs at once (0: none; live polls have their own concurrency). */
    readonly concurrency: number;
    /** One backfill job reads at most this long, then yields its slot to the next scope's backfill. */
    readonly sliceMs: number;
  };
  readonly outbox: {
    /** Entries an outbox may hold before polls that feed it pause. */
    readonly maxLength: number;
  };
  readonly delivery: {
    readonly batchSize: number;
    readonly retryInitialMs: number;
    readonly retryMaxMs: number;
    /** A delivery consumer silent this long is presumed dead; its pending entries are reclaimed. */
    readonly consumerTimeoutMs: number;
  };
  readonly shutdownTimeoutMs: number;
}

/** One scope to poll, resolved against its provider. */
export interface ScopeSpec {
  /** `scopeKey(providerType, ref)`: the identity of its state in Redis. */
  readonly key: string;
  /** Name of the provider instance that polls it. */
  readonly provider: string;
  readonly providerType: string;
  readonly ref: ScopeRef;
  readonly intervalMs: number;
  /** Names of the sinks its events go to (all sinks unless the scope lists some). */
  readonly sinks: readonly string[];
  /** The provider module's validated scope settings. */
  readonly settings: unknown;
  /** Set on scopes found by discovery: the key of the configured scope whose walk found it. */
  readonly discoveredBy?: string;
}

export interface ShipperConfig {
  /** The file it was read from, or `<embedded default>`. */
  readonly origin: string;
  readonly daemon: DaemonSettings;
  readonly providers: readonly ProviderInstance[];
  readonly scopes: readonly ScopeSpec[];
  readonly sinks: readonly SinkInstance[];
}
