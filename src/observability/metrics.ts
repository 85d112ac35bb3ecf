import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { redactSecrets } from '../config/redact.ts';
import { VERSION } from '../version.ts';

const PREFIX = 'auditlog_';

/** Buckets in seconds from 1 s to ~1 day: late arrivals and freshness span that whole range. */
const DELAY_BUCKETS = [1, 2, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400];

/**
 * Every metric the shipper exports, on one registry per process (tests make their own). Label sets are
 * small and bounded: provider, scope kind, sink, reason; the per-scope lag gauge can be turned off for
 * very large fleets.
 */
/** How long a scrape waits for the gauges it refreshes from Redis. */
const SCRAPE_REFRESH_DEADLINE_MS = 2_000;

export class Metrics {
  readonly registry = new Registry();

  readonly providerRequests = new Counter({
    name: `${PREFIX}provider_requests_total`,
    help: 'Provider API requests by HTTP status (0: no response: timeout or network error).',
    labelNames: ['provider', 'api', 'status'] as const,
    registers: [this.registry],
  });

  readonly providerRequestSeconds = new Histogram({
    name: `${PREFIX}provider_request_duration_seconds`,
    help: 'Provider API request latency.',
    labelNames: ['provider', 'api'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly eventsFetched = new Counter({
    name: `${PREFIX}events_fetched_total`,
    help: 'Events read from providers, including re-reads of the overlap window.',
    labelNames: ['provider', 'scope_kind'] as const,
    registers: [this.registry],
  });

  readonly eventsCommitted = new Counter({
    name: `${PREFIX}events_committed_total`,
    help: 'New events committed to the outboxes (each counted once, whatever the number of sinks).',
    labelNames: ['provider', 'scope_kind'] as const,
    registers: [this.registry],
  });

  readonly eventsDeduplicated = new Counter({
    name: `${PREFIX}events_deduplicated_total`,
    help: 'Events read again (overlap window, retried pages) and recognised as already committed.',
    labelNames: ['provider', 'scope_kind'] as const,
    registers: [this.registry],
  });

  readonly eventIdConflicts = new Counter({
    name: `${PREFIX}event_id_conflicts_total`,
    help: 'Events whose id was already committed with other bytes: delivered under a derived id with an id_conflict anomaly.',
    labelNames: ['provider', 'scope_kind'] as const,
    registers: [this.registry],
  });

  readonly eventsOutsideRange = new Counter({
    name: `${PREFIX}events_outside_range_total`,
    help: 'Events a provider returned dated before the time range the request asked for; logged with their ids, not committed.',
    labelNames: ['provider', 'scope_kind'] as const,
    registers: [this.registry],
  });

  readonly lateArrivalSeconds = new Histogram({
    name: `${PREFIX}late_arrival_seconds`,
    help: 'Late arrivals: first seen minus event time of events that became visible after a poll had already read past their time (a first lookback counts none). Size the overlap window above its high quantiles.',
    labelNames: ['provider'] as const,
    buckets: DELAY_BUCKETS,
    registers: [this.registry],
  });

  readonly polls = new Counter({
    name: `${PREFIX}polls_total`,
    help: 'Polls by outcome: completed, paused (an outbox is full), interrupted (shutdown, lease lost), failed, skipped (another poll holds the scope).',
    labelNames: ['provider', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly pollErrors = new Counter({
    name: `${PREFIX}poll_errors_total`,
    help: 'Failed polls by reason (rate_limited, server_error, invalid_json, unauthorized, ...).',
    labelNames: ['provider', 'reason'] as const,
    registers: [this.registry],
  });

  readonly pollSeconds = new Histogram({
    name: `${PREFIX}poll_duration_seconds`,
    help: 'Duration of one poll of one scope.',
    labelNames: ['provider'] as const,
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });

  readonly leaseConflicts = new Counter({
    name: `${PREFIX}lease_conflicts_total`,
    help: 'Poll jobs skipped because another poll of the same scope held its lease.',
    registers: [this.registry],
  });

  readonly checkpointLagSeconds = new Gauge({
    name: `${PREFIX}checkpoint_lag_seconds`,
    help: 'Now minus the scope high-water mark, read from Redis at scrape time (the same on every replica). With per-scope labels off: the largest lag of the provider\'s scopes, scope="".',
    labelNames: ['provider', 'scope'] as const,
    registers: [this.registry],
  });

  readonly scopeFailures = new Gauge({
    name: `${PREFIX}scope_consecutive_failures`,
    help: 'Polls of the scope that failed in a row (0 after a successful poll). With per-scope labels off: scopes currently failing per provider, scope="".',
    labelNames: ['provider', 'scope'] as const,
    registers: [this.registry],
  });

  readonly outboxLength = new Gauge({
    name: `${PREFIX}outbox_length`,
    help: 'Events waiting for a sink (not yet acknowledged).',
    labelNames: ['sink'] as const,
    registers: [this.registry],
  });

  readonly outboxOldestAgeSeconds = new Gauge({
    name: `${PREFIX}outbox_oldest_age_seconds`,
    help: 'Age of the oldest event waiting for a sink; 0 when its outbox is empty.',
    labelNames: ['sink'] as const,
    registers: [this.registry],
  });

  readonly deadLetterLength = new Gauge({
    name: `${PREFIX}dead_letter_length`,
    help: 'Events a sink rejected for good, kept in its dead-letter stream until redriven.',
    labelNames: ['sink'] as const,
    registers: [this.registry],
  });

  readonly queueJobs = new Gauge({
    name: `${PREFIX}queue_jobs`,
    help: 'BullMQ jobs by queue and state.',
    labelNames: ['queue', 'state'] as const,
    registers: [this.registry],
  });

  readonly configReloads = new Counter({
    name: `${PREFIX}config_reloads_total`,
    help: 'Config reloads (SIGHUP or a changed file) by result: applied, invalid (the old config keeps running), failed.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly configLoadedTimestamp = new Gauge({
    name: `${PREFIX}config_loaded_timestamp_seconds`,
    help: 'When the config in effect was loaded (start or last applied reload).',
    registers: [this.registry],
  });

  readonly redisEvictionUnsafe = new Gauge({
    name: `${PREFIX}redis_eviction_unsafe`,
    help: '1 while Redis runs with a maxmemory-policy other than noeviction (re-checked every minute): it may evict undelivered events and checkpoints.',
    registers: [this.registry],
  });

  readonly stateReadErrors = new Counter({
    name: `${PREFIX}metrics_state_read_errors_total`,
    help: 'Scrapes that could not read scope, outbox or queue state from Redis (those gauges keep their last values).',
    registers: [this.registry],
  });

  readonly sinkEvents = new Counter({
    name: `${PREFIX}sink_events_total`,
    help: 'Events handled by sinks by result: delivered, duplicate (the sink already had it), retried, dead_lettered.',
    labelNames: ['sink', 'result'] as const,
    registers: [this.registry],
  });

  readonly sinkSendSeconds = new Histogram({
    name: `${PREFIX}sink_send_duration_seconds`,
    help: 'Duration of one batch send to a sink.',
    labelNames: ['sink'] as const,
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly sinkFailures = new Counter({
    name: `${PREFIX}sink_failures_total`,
    help: 'Batch sends that failed as a whole (network errors, 5xx) and are retried.',
    labelNames: ['sink'] as const,
    registers: [this.registry],
  });

  readonly sinkRequests = new Counter({
    name: `${PREFIX}sink_requests_total`,
    help: 'Requests sinks made to their store by operation and HTTP status (error: no response).',
    labelNames: ['sink', 'operation', 'status'] as const,
    registers: [this.registry],
  });

  readonly sinkRequestSeconds = new Histogram({
    name: `${PREFIX}sink_request_duration_seconds`,
    help: 'Latency of one request to a sink store.',
    labelNames: ['sink', 'operation'] as const,
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly sinkBatchEvents = new Histogram({
    name: `${PREFIX}sink_batch_events`,
    help: 'Events per batch handed to a sink.',
    labelNames: ['sink'] as const,
    buckets: [1, 10, 50, 100, 500, 1000, 5000, 10000, 50000],
    registers: [this.registry],
  });

  readonly sinkBatchBytes = new Histogram({
    name: `${PREFIX}sink_batch_bytes`,
    help: 'Bytes of event lines per batch handed to a sink (before compression).',
    labelNames: ['sink'] as const,
    buckets: [1e3, 1e4, 1e5, 5e5, 1e6, 5e6, 1e7, 5e7, 1e8],
    registers: [this.registry],
  });

  readonly sinkInflightBatches = new Gauge({
    name: `${PREFIX}sink_inflight_batches`,
    help: 'Batches being sent or retried right now.',
    labelNames: ['sink'] as const,
    registers: [this.registry],
  });

  readonly sinkRetryStreak = new Gauge({
    name: `${PREFIX}sink_retry_streak`,
    help: 'Failed attempts in a row of the batch a sink is stuck on (0 when it is flowing): deliveries never give up, alert on this.',
    labelNames: ['sink'] as const,
    registers: [this.registry],
  });

  readonly sinkLastSuccess = new Gauge({
    name: `${PREFIX}sink_last_success_timestamp_seconds`,
    help: 'When a sink last took a batch (delivered or duplicate).',
    labelNames: ['sink'] as const,
    registers: [this.registry],
  });

  readonly freshnessSeconds = new Histogram({
    name: `${PREFIX}freshness_seconds`,
    help: 'Event time to delivery at the sink.',
    labelNames: ['sink'] as const,
    buckets: DELAY_BUCKETS,
    registers: [this.registry],
  });

  readonly outboxFullPauses = new Counter({
    name: `${PREFIX}outbox_full_pauses_total`,
    help: 'Polls that stopped early because an outbox they feed reached its cap (backpressure).',
    labelNames: ['sink'] as const,
    registers: [this.registry],
  });

  readonly scopeNotFound = new Counter({
    name: `${PREFIX}scope_not_found_total`,
    help: 'Polls a provider answered 404 (scope deleted or out of reach); such a scope is then re-checked slowly.',
    labelNames: ['provider', 'scope_kind'] as const,
    registers: [this.registry],
  });

  readonly apiRetired = new Counter({
    name: `${PREFIX}api_retired_total`,
    help: 'Polls the provider answered that its audit-log API is gone (410, or a 404 not from the API itself): STACKIT retiring Audit Log API v2. Such scopes are re-checked slowly, not retried.',
    labelNames: ['provider'] as const,
    registers: [this.registry],
  });

  readonly pushRequests = new Counter({
    name: `${PREFIX}push_requests_total`,
    help: 'Pushed OTLP requests by transport and outcome: accepted, invalid (malformed parts; the rest committed), busy (outbox full: 429), unavailable (Redis: 503), unauthorized, malformed, too_large, unsupported.',
    labelNames: ['provider', 'transport', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly pushRecords = new Counter({
    name: `${PREFIX}push_records_total`,
    help: 'Pushed log records by outcome: committed (new), duplicate (already committed by a push or poll), anomalous (committed with anomalies), malformed (unreadable OTLP, named in a 400).',
    labelNames: ['provider', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly pushCommitSeconds = new Histogram({
    name: `${PREFIX}push_commit_duration_seconds`,
    help: 'From a pushed request decoded to its commit durable in Redis (the time before the sender hears success).',
    labelNames: ['provider'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly rateLimitWaitSeconds = new Histogram({
    name: `${PREFIX}rate_limit_wait_seconds`,
    help: 'Time a provider request waited for its shared request budget, by lane (live, backfill).',
    labelNames: ['bucket', 'lane'] as const,
    buckets: [0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });

  readonly rateLimitPauses = new Counter({
    name: `${PREFIX}rate_limit_pauses_total`,
    help: 'Times a provider answered 429 and the request budget paused for every replica.',
    labelNames: ['bucket'] as const,
    registers: [this.registry],
  });

  readonly discoveryRuns = new Counter({
    name: `${PREFIX}discovery_runs_total`,
    help: 'Walks of a provider hierarchy (STACKIT Resource Manager) by outcome: ok, failed.',
    labelNames: ['provider', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly discoveredScopes = new Gauge({
    name: `${PREFIX}discovered_scopes`,
    help: 'Scopes found by discovery, by state: active, missing (not found lately, still polled), gone (not polled, state kept). Set by the leader.',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });

  readonly discoveryChanges = new Counter({
    name: `${PREFIX}discovery_changes_total`,
    help: 'Discovered scopes that were added, went missing, came back, were declared gone, or forgotten (state deleted).',
    labelNames: ['change'] as const,
    registers: [this.registry],
  });

  readonly backfillRuns = new Gauge({
    name: `${PREFIX}backfill_runs`,
    help: 'Backfill runs by status (running, done). Set by the leader.',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });

  readonly backfillRemainingSeconds = new Gauge({
    name: `${PREFIX}backfill_remaining_seconds`,
    help: 'History a running backfill still has to read (event-time span). Set by the leader.',
    labelNames: ['scope'] as const,
    registers: [this.registry],
  });

  readonly buildInfo = new Gauge({
    name: `${PREFIX}build_info`,
    help: "Always 1; the labels say which build runs: version, revision (the image's git commit) and Node version.",
    labelNames: ['version', 'revision', 'node_version'] as const,
    registers: [this.registry],
  });

  readonly redisStateLost = new Counter({
    name: `${PREFIX}redis_state_lost_total`,
    help: 'Times this process found that Redis lost its state (generation marker gone or replaced): checkpoints restart from lookback.',
    registers: [this.registry],
  });

  /** Per-scope labels on per-scope gauges; off for fleets with tens of thousands of scopes. */
  readonly perScope: boolean;
  readonly #beforeScrape: Array<() => Promise<void>> = [];

  constructor(options: { perScope?: boolean; processMetrics?: boolean; revision?: string } = {}) {
    this.perScope = options.perScope ?? true;
    this.buildInfo.set(
      {
        version: VERSION,
        revision: options.revision ?? (process.env.AUDITLOG_REVISION || 'unknown'),
        node_version: process.versions.node,
      },
      1,
    );
    if (options.processMetrics ?? false) {
      collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
      // prom-client still exports these deprecated copies of nodejs_active_{handles,requests,resources}:
      // gauges named *_total, which `promtool check metrics` rejects. The unsuffixed ones stay.
      for (const name of ['active_handles', 'active_requests', 'active_resources']) {
        this.registry.removeSingleMetric(`${PREFIX}nodejs_${name}_total`);
      }
    }
  }

  /** Registers work that refreshes gauges from shared state (Redis) right before each scrape. */
  beforeScrape(refresh: () => Promise<void>): void {
    this.#beforeScrape.push(refresh);
  }

  /**
   * The exposition text, after refreshing state gauges. A refresh that fails, or that has not finished
   * within `deadlineMs` (Redis down or stalled: its commands wait), is counted and its gauges keep their
   * last values: a scrape answers with what it has instead of hanging.
   */
  async scrape(deadlineMs = SCRAPE_REFRESH_DEADLINE_MS): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), deadlineMs);
    });
    const results = await Promise.all(
      this.#beforeScrape.map((refresh) =>
        Promise.race([
          refresh().then(
            () => 'ok' as const,
            () => 'failed' as const,
          ),
          deadline,
        ]),
      ),
    );
    clearTimeout(timer);
    for (const result of results) if (result !== 'ok') this.stateReadErrors.inc();
    // Label values are closed sets or names from the config, but a secret must not slip out here either.
    return redactSecrets(await this.registry.metrics());
  }
}
