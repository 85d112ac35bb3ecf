import type { Queue } from 'bullmq';
import type { ScopeSpec } from '../config/types.ts';
import type { RedisKeys } from '../pipeline/keys.ts';
import type { OutboxMonitor } from '../pipeline/outbox.ts';
import type { RedisClient } from '../redis/client.ts';
import type { Metrics } from './metrics.ts';

export interface StateMetricsSources {
  readonly redis: RedisClient;
  readonly keys: RedisKeys;
  readonly outbox: OutboxMonitor;
  readonly metrics: Metrics;
  /** The scopes to report, read at every scrape (configured and discovered; the set changes). */
  readonly scopes: () => readonly ScopeSpec[] | Promise<readonly ScopeSpec[]>;
  readonly sinks: () => readonly string[];
  readonly queues: readonly Queue[];
}

const JOB_STATES = ['waiting', 'active', 'delayed', 'failed', 'prioritized'] as const;

/**
 * Gauges computed from Redis at scrape time rather than set when something happens: lag keeps growing
 * while a scope is not polled, and every replica reports the same shared state, so `max by (scope)` in
 * a query is right whichever pod Prometheus scraped.
 */
export function registerStateMetrics(s: StateMetricsSources): void {
  s.metrics.beforeScrape(() => refreshScopes(s));
  s.metrics.beforeScrape(() => refreshOutboxes(s));
  s.metrics.beforeScrape(() => refreshQueues(s));
}

async function refreshScopes(s: StateMetricsSources): Promise<void> {
  const scopes = await s.scopes();
  const pipeline = s.redis.pipeline();
  for (const scope of scopes) {
    pipeline.hget(s.keys.checkpoint(scope.key), 'watermark');
    pipeline.hget(s.keys.status(scope.key), 'consecutiveFailures');
  }
  const replies = (await pipeline.exec()) ?? [];
  const now = Date.now();
  const { checkpointLagSeconds, scopeFailures, perScope } = s.metrics;
  const worst = new Map<string, { lag: number; failing: number }>();
  checkpointLagSeconds.reset();
  scopeFailures.reset();
  scopes.forEach((scope, i) => {
    const [watermarkError, watermark] = replies[2 * i] ?? [];
    const [failuresError, failures] = replies[2 * i + 1] ?? [];
    if (watermarkError || failuresError) throw watermarkError ?? failuresError;
    const lag = watermark == null ? undefined : Math.max(0, (now - Number(watermark)) / 1000);
    const failing = Number(failures ?? 0);
    if (perScope) {
      if (lag !== undefined)
        checkpointLagSeconds.set({ provider: scope.providerType, scope: scope.key }, lag);
      scopeFailures.set({ provider: scope.providerType, scope: scope.key }, failing);
      return;
    }
    const acc = worst.get(scope.providerType) ?? { lag: 0, failing: 0 };
    worst.set(scope.providerType, {
      lag: Math.max(acc.lag, lag ?? 0),
      failing: acc.failing + (failing > 0 ? 1 : 0),
    });
  });
  for (const [provider, { lag, failing }] of worst) {
    checkpointLagSeconds.set({ provider, scope: '' }, lag);
    scopeFailures.set({ provider, scope: '' }, failing);
  }
}

async function refreshOutboxes(s: StateMetricsSources): Promise<void> {
  const now = Date.now();
  for (const sink of s.sinks()) {
    const depth = await s.outbox.depth(sink, now);
    s.metrics.outboxLength.set({ sink }, depth.length);
    s.metrics.outboxOldestAgeSeconds.set({ sink }, depth.length === 0 ? 0 : depth.oldestAgeMs / 1000);
    s.metrics.deadLetterLength.set({ sink }, depth.deadLettered);
  }
}

async function refreshQueues(s: StateMetricsSources): Promise<void> {
  for (const queue of s.queues) {
    const counts = await queue.getJobCounts(...JOB_STATES);
    for (const state of JOB_STATES) s.metrics.queueJobs.set({ queue: queue.name, state }, counts[state] ?? 0);
  }
}
