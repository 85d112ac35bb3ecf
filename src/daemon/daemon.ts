import { join } from 'node:path';
import { Queue } from 'bullmq';
import type { Logger } from 'pino';
import { redactRedisUrl } from '../config/redis-url.ts';
import type { DaemonSettings, ShipperConfig } from '../config/types.ts';
import { RateBudgets } from '../http/rate-budget.ts';
import { sleep } from '../http/retry.ts';
import { ObservabilityServer } from '../observability/http-server.ts';
import { throttledErrorLog } from '../observability/logger.ts';
import { Metrics } from '../observability/metrics.ts';
import { registerStateMetrics } from '../observability/state-metrics.ts';
import {
  BACKFILL_QUEUE,
  BackfillCoordinator,
  type BackfillJobData,
  BackfillWorker,
} from '../pipeline/backfill.ts';
import { BackfillStore } from '../pipeline/backfill-store.ts';
import { Committer } from '../pipeline/commit.ts';
import { DiscoveryService } from '../pipeline/discovery.ts';
import { ScopeCatalog } from '../pipeline/discovery-catalog.ts';
import { DiscoveryStore } from '../pipeline/discovery-store.ts';
import { RedisKeys } from '../pipeline/keys.ts';
import { LeaderLock } from '../pipeline/leader.ts';
import { LeaseManager } from '../pipeline/lease.ts';
import { OutboxMonitor } from '../pipeline/outbox.ts';
import { PathRecorder } from '../pipeline/paths.ts';
import { POLL_QUEUE, type PollJobData } from '../pipeline/poll-queue.ts';
import { PollWorker } from '../pipeline/poll-worker.ts';
import { Poller } from '../pipeline/poller.ts';
import { RedisGenerationWatch } from '../pipeline/redis-generation.ts';
import { LEADER_TTL_MS, ScheduleReconciler } from '../pipeline/scheduler.ts';
import { ScopeStateStore } from '../pipeline/scope-state.ts';
import type { RedisClient } from '../redis/client.ts';
import { sourceModules } from '../sources/registry.ts';
import { fingerprint } from './fingerprint.ts';
import { LinkReconcilerSet } from './link-reconcilers.ts';
import { PushReceiverSet } from './push-set.ts';
import { checkRedisServer, connectRedis, duplicateRedis, RedisConnectError } from './redis.ts';
import { RedisEvictionWatch } from './redis-config-watch.ts';
import { RedisServerProcess } from './redis-server.ts';
import { SinkSet } from './sink-set.ts';
import { type SetChange, SourceSet } from './source-set.ts';

/** Backoff while Redis is unreachable at start. */
const REDIS_WAIT_INITIAL_MS = 1_000;
const REDIS_WAIT_MAX_MS = 30_000;
/** How often the daemon checks that Redis still holds its generation marker (also on every reconnect). */
const REDIS_GENERATION_CHECK_MS = 5_000;

export interface DaemonOptions {
  readonly log: Logger;
  readonly metrics?: Metrics;
  /** Aborts the start-up (a signal came): what has started is stopped, and `start` rejects. */
  readonly signal?: AbortSignal;
}

/**
 * Wires one process: Redis, sinks and their delivery workers, sources, the poll worker and (when this
 * process leads) the schedule reconciler, plus the metrics/health server. `stop` tears it down in the
 * order that loses nothing: stop polling, finish deliveries, close sinks, then Redis.
 */
export interface ReloadSummary {
  readonly providers: SetChange;
  readonly sinks: SetChange;
  readonly scopes: { readonly added: readonly string[]; readonly removed: readonly string[] };
  /** Daemon settings that changed but only take effect after a restart. */
  readonly needsRestart: readonly string[];
}

export class Daemon {
  #config: ShipperConfig;
  readonly metrics: Metrics;
  readonly #log: Logger;
  readonly #signal: AbortSignal;
  readonly #closers: Array<{ name: string; close: () => Promise<void> }> = [];
  #pollWorker: PollWorker | undefined;
  #sinks: SinkSet | undefined;
  #sources: SourceSet | undefined;
  #pushes: PushReceiverSet | undefined;
  #catalog: ScopeCatalog | undefined;
  #reconciler: ScheduleReconciler | undefined;
  #discovery: DiscoveryService | undefined;
  #linkReconcilers: LinkReconcilerSet | undefined;
  #backfillCoordinator: BackfillCoordinator | undefined;
  #backfillWorker: BackfillWorker | undefined;
  #metricsPort: number | undefined;
  /** The main Redis connection, once there is one (readiness pings it). */
  #redis: RedisClient | undefined;
  /** Until the start-up is done: /readyz says "starting". */
  #starting = true;
  /** Why there is no Redis connection yet (e.g. unreachable at start), for /readyz. */
  #redisWaiting: string | undefined;
  #stopping: Promise<void> | undefined;
  #reloading: Promise<void> = Promise.resolve();
  /** Every Redis connection, disconnected last: a command queued while Redis is down waits forever otherwise. */
  readonly #connections: RedisClient[] = [];

  private constructor(config: ShipperConfig, options: DaemonOptions) {
    this.#config = config;
    this.#log = options.log;
    this.#signal = options.signal ?? new AbortController().signal;
    this.metrics =
      options.metrics ??
      new Metrics({ processMetrics: true, perScope: config.daemon.metrics.perScopeLabels });
  }

  static async start(config: ShipperConfig, options: DaemonOptions): Promise<Daemon> {
    const daemon = new Daemon(config, options);
    try {
      await daemon.#start();
    } catch (error) {
      await daemon.#teardown(5_000);
      throw error;
    }
    return daemon;
  }

  /** The config in effect (its daemon settings are the ones the process started with). */
  get config(): ShipperConfig {
    return this.#config;
  }

  /**
   * Applies a reloaded config without a restart: providers, scopes and sinks are added, removed or
   * replaced in place; polls and deliveries in flight finish first, nothing queued is lost. Daemon
   * settings (Redis, ports, concurrency…) only take effect after a restart; the summary names them.
   * Reloads run one at a time.
   */
  applyConfig(next: ShipperConfig): Promise<ReloadSummary> {
    const run = this.#reloading.then(() => this.#apply(next));
    this.#reloading = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  async #apply(next: ShipperConfig): Promise<ReloadSummary> {
    if (this.#stopping || !this.#sources || !this.#sinks || !this.#catalog) {
      throw new Error('the shipper is not running');
    }
    const current = this.#config;
    const needsRestart = changedSettings(current.daemon, next.daemon);
    const providers = this.#sources.apply(next.providers);
    const sinks = await this.#sinks.apply(next.sinks, current.daemon.shutdownTimeoutMs);
    await this.#pushes?.apply(next.providers);
    const before = new Set(current.scopes.map((s) => s.key));
    const after = new Set(next.scopes.map((s) => s.key));
    this.#catalog.setConfigured(next.scopes);
    this.#config = { ...next, daemon: current.daemon };
    this.#reconciler?.markDirty();
    void this.#reconciler?.tick();
    void this.#discovery?.tick();
    await this.#linkReconcilers?.apply(this.#config);
    return {
      providers,
      sinks,
      scopes: {
        added: [...after].filter((k) => !before.has(k)),
        removed: [...before].filter((k) => !after.has(k)),
      },
      needsRestart,
    };
  }

  /** Port of the metrics/health server, once listening. */
  get metricsPort(): number | undefined {
    return this.#metricsPort;
  }

  async #start(): Promise<void> {
    const { daemon: settings } = this.config;
    const log = this.#log;

    const aborted = (): void => this.#signal.throwIfAborted();
    // Health first: while the start waits (for Redis above all), /healthz says alive and /readyz says
    // why it is not ready yet, instead of a connection refused that looks like a dead process.
    if (settings.metrics.port !== 0) {
      const server = new ObservabilityServer(this.metrics, [
        { name: 'redis', check: () => this.#redisProblem() },
        {
          name: 'workers',
          check: async () => (this.#stopping ? 'shutting down' : this.#starting ? 'starting' : undefined),
        },
      ]);
      this.#metricsPort = await server.listen(settings.metrics.host, settings.metrics.port);
      this.#closers.push({ name: 'metrics server', close: () => server.close() });
    }
    const redisUrl = await this.#redisUrl();
    aborted();
    const redis = await this.#waitForRedis(redisUrl);
    this.#redis = redis;
    this.#redisWaiting = undefined;
    this.#connections.push(redis);
    const duplicate = (role: string): RedisClient => {
      const connection = duplicateRedis(redis, role, log);
      this.#connections.push(connection);
      return connection;
    };
    this.#closers.push({
      name: 'redis',
      close: async () => void (await redis.quit().catch(() => undefined)),
    });
    await checkRedisServer(redis, log);
    const evictionWatch = new RedisEvictionWatch(redis, log, this.metrics);
    evictionWatch.start();
    this.#closers.push({ name: 'eviction watch', close: async () => evictionWatch.stop() });
    aborted();
    const keys = new RedisKeys(settings.redis.prefix);
    const outbox = new OutboxMonitor(redis, keys);
    const state = new ScopeStateStore(redis, keys);
    // Notices Redis coming back empty under us, says so, and re-creates what delivery and polling need.
    const generation = new RedisGenerationWatch({
      redis,
      keys,
      metrics: this.metrics,
      log,
      intervalMs: REDIS_GENERATION_CHECK_MS,
      onLost: async () => {
        await this.#sinks?.ensureGroups();
        this.#reconciler?.markDirty();
        void this.#reconciler?.tick();
      },
    });
    await generation.start();
    this.#closers.push({ name: 'redis generation watch', close: async () => generation.stop() });

    this.#sinks = new SinkSet({ redis, duplicate, keys, outbox, settings, metrics: this.metrics, log });
    await this.#sinks.apply(this.config.sinks, settings.shutdownTimeoutMs);
    const sinkSet = this.#sinks;
    aborted();

    // One request budget per credential and API, shared with every replica through Redis.
    const rateBudgets = new RateBudgets(redis, (id) => keys.rateBucket(id), {
      onWait: (bucket, lane, waitedMs) =>
        this.metrics.rateLimitWaitSeconds.observe({ bucket, lane }, waitedMs / 1000),
      onPause: (bucket) => this.metrics.rateLimitPauses.inc({ bucket }),
    });
    const sourceSet = new SourceSet({
      log,
      instanceId: settings.instanceId,
      rateBudgets,
      metrics: this.metrics,
      // Polls stop at a page boundary once their lease is gone; two lease periods is ample.
      retireAfterMs: 2 * settings.poll.leaseTtlMs,
    });
    sourceSet.apply(this.config.providers);
    this.#sources = sourceSet;
    const sources = sourceSet.map;
    this.#closers.push({ name: 'sources', close: () => sourceSet.close() });

    // Configured scopes plus what the leader's discovery published in Redis: every replica resolves both.
    const discoveryStore = new DiscoveryStore(redis, keys);
    const catalog = new ScopeCatalog(this.config.scopes, sources, discoveryStore);
    this.#catalog = catalog;
    const backfills = new BackfillStore(redis, keys);
    const pollerDeps = {
      leases: new LeaseManager(redis, keys),
      committer: new Committer(redis, keys),
      outbox,
      state,
      metrics: this.metrics,
      log,
      leaseTtlMs: settings.poll.leaseTtlMs,
      outboxMaxLength: settings.outbox.maxLength,
      notFoundRecheckMs: settings.poll.notFoundRecheckMs,
    };
    // With a push provider configured, polled STACKIT ids are recorded for the migration view.
    const pushing = this.config.providers.some((p) => sourceModules.get(p.type)?.push !== undefined);
    const poller = new Poller({
      ...pollerDeps,
      sources,
      ...(pushing
        ? {
            paths: {
              recorder: new PathRecorder(redis, keys),
              tracks: (scope) => scope.providerType === 'stackit',
            },
          }
        : {}),
      onScopeNotFound: async (scope) => {
        if (scope.discoveredBy !== undefined)
          await discoveryStore.requestRecheck(scope.discoveredBy, Date.now());
      },
      onHistoryOwed: async (scope, range) => {
        const { outcome } = await backfills.request(scope.key, range, 'lookback', Date.now());
        if (outcome === 'created' || outcome === 'extended') {
          log.info(
            {
              scope: scope.key,
              from: new Date(range.fromMs).toISOString(),
              to: new Date(range.toMs).toISOString(),
            },
            `${scope.key}: its lookback reaches further back than one day; that history is read by a backfill`,
          );
          void this.#backfillCoordinator?.tick();
        }
      },
    });
    // BullMQ leaves connections it was given open on close(); these are closed here, after it.
    const bullConnection = duplicate('poll-worker');
    const queueConnection = duplicate('scheduler');
    this.#closers.push({
      name: 'bullmq connections',
      close: async () => {
        bullConnection.disconnect();
        queueConnection.disconnect();
      },
    });
    this.#pollWorker = new PollWorker({
      connection: bullConnection,
      prefix: settings.redis.prefix,
      concurrency: settings.poll.concurrency,
      poller,
      resolve: (key) => catalog.resolve(key),
      log,
    });
    this.#pollWorker.start();

    // The backfill lane: its own queue, workers and concurrency, so history never starves live polls.
    const backfillConnection = duplicate('backfill-worker');
    const backfillQueueConnection = duplicate('backfill-queue');
    this.#closers.push({
      name: 'backfill connections',
      close: async () => {
        backfillConnection.disconnect();
        backfillQueueConnection.disconnect();
      },
    });
    this.#backfillWorker = new BackfillWorker({
      connection: backfillConnection,
      prefix: settings.redis.prefix,
      concurrency: settings.backfill.concurrency,
      sliceMs: settings.backfill.sliceMs,
      lockDurationMs: Math.max(5_000, settings.poll.leaseTtlMs),
      store: backfills,
      state,
      catalog,
      sources,
      poller: pollerDeps,
      log,
    });
    this.#backfillWorker.start();
    const backfillQueue = new Queue<BackfillJobData>(BACKFILL_QUEUE, {
      connection: backfillQueueConnection,
      prefix: settings.redis.prefix,
    });
    backfillQueue.on('error', throttledErrorLog(log, 'backfill queue error (Redis unreachable?)'));
    this.#closers.push({ name: 'backfill queue', close: () => backfillQueue.close() });

    const queue = new Queue<PollJobData>(POLL_QUEUE, {
      connection: queueConnection,
      prefix: settings.redis.prefix,
    });
    queue.on('error', throttledErrorLog(log, 'poll scheduler queue error (Redis unreachable?)'));
    this.#closers.push({ name: 'queue', close: () => queue.close() });
    // Schedules are re-checked about once per shortest interval (5s to 60s): often enough to repair a
    // broken chain of jobs within a few polls, rarely enough to stay cheap with thousands of scopes.
    const shortestInterval = Math.min(...this.config.scopes.map((s) => s.intervalMs));
    const leader = new LeaderLock(redis, keys.leader(), settings.instanceId, LEADER_TTL_MS);
    this.#reconciler = new ScheduleReconciler(
      queue,
      leader,
      log,
      Math.min(60_000, Math.max(5_000, shortestInterval)),
    );
    this.#reconciler.setScopeSupplier(() => catalog.all());
    this.#reconciler.start();
    const reconciler = this.#reconciler;
    // Always running, even without roots today: a reloaded config may add some.
    this.#discovery = new DiscoveryService({
      catalog,
      store: discoveryStore,
      sources,
      leader,
      leaderKey: keys.leader(),
      holder: settings.instanceId,
      keys,
      metrics: this.metrics,
      log,
      onChange: () => reconciler.markDirty(),
    });
    this.#discovery.start();
    // STACKIT Telemetry Links, if a provider asks for it (telemetry.reconcile); leader only.
    this.#linkReconcilers = new LinkReconcilerSet({
      instanceId: settings.instanceId,
      isLeader: () => leader.tryLead(),
      log,
    });
    await this.#linkReconcilers.apply(this.config);
    this.#backfillCoordinator = new BackfillCoordinator({
      queue: backfillQueue,
      store: backfills,
      state,
      catalog,
      leader,
      metrics: this.metrics,
      log,
    });
    this.#backfillCoordinator.start();

    // Push providers (STACKIT Telemetry Router): an OTLP receiver on every replica, committing each
    // request atomically before it answers. Closed first on shutdown, so no request is accepted late.
    const pushes = new PushReceiverSet({
      redis,
      keys,
      sinks: () => sinkSet.names(),
      maxOutbox: settings.outbox.maxLength,
      metrics: this.metrics,
      log,
    });
    this.#pushes = pushes;
    await pushes.apply(this.config.providers);

    registerStateMetrics({
      redis,
      keys,
      outbox,
      metrics: this.metrics,
      scopes: () => catalog.all(),
      sinks: () => sinkSet.names(),
      queues: [queue, backfillQueue],
    });

    aborted();

    this.#starting = false;
    log.info(
      {
        config: this.config.origin,
        redis: redactRedisUrl(redisUrl),
        scopes: this.config.scopes.length,
        sinks: sinkSet.names(),
        metricsPort: this.#metricsPort,
        pushReceivers: pushes.ports(),
      },
      `auditlog-shipper running: ${this.config.scopes.length} scopes, ${sinkSet.names().length} sinks`,
    );
  }

  /**
   * Connects to Redis, waiting with backoff (1 s doubling to 30 s) while it is unreachable: during a
   * failover every restarting replica would otherwise exit and crash-loop. Unready meanwhile, saying why
   * in the log and in /readyz. Refused credentials are fatal: waiting cannot fix them. A signal ends it.
   */
  async #waitForRedis(url: string): Promise<RedisClient> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await connectRedis(url, 'main', this.#log);
      } catch (error) {
        if (!(error instanceof RedisConnectError) || !error.retryable) throw error;
        const waitMs = Math.min(REDIS_WAIT_MAX_MS, REDIS_WAIT_INITIAL_MS * 2 ** Math.min(attempt, 10));
        this.#redisWaiting = `waiting for Redis: ${error.message}`;
        this.#log.warn(
          { attempt: attempt + 1, retryInMs: waitMs },
          `${error.message}; waiting for it, next try in ${waitMs / 1000} s (not ready meanwhile)`,
        );
        await sleep(waitMs, this.#signal);
      }
    }
  }

  /**
   * Readiness of Redis, answered at once when the connection is down and within the server's deadline
   * when Redis is up but stalled (commands would otherwise queue until it answers).
   */
  async #redisProblem(): Promise<string | undefined> {
    const redis = this.#redis;
    if (!redis) return this.#redisWaiting ?? 'connecting';
    if (redis.status !== 'ready') return `connection ${redis.status}`;
    return (await redis.ping()) === 'PONG' ? undefined : 'no PONG';
  }

  async #redisUrl(): Promise<string> {
    const { redis, dataDir } = this.config.daemon;
    if (redis.url !== '') return redis.url;
    const server = new RedisServerProcess({ dir: join(dataDir, 'redis') });
    // Registered before it starts: a start-up aborted half-way stops it too, never leaving it behind.
    this.#closers.push({ name: 'embedded redis', close: () => server.stop() });
    const adopted = await server.start();
    if (server.stoppedLeftover !== undefined) {
      this.#log.warn(
        { dir: server.dir, pid: server.stoppedLeftover },
        `stopped a leftover redis-server (pid ${server.stoppedLeftover}) in ${server.dir} that did not answer, so that two never share its AOF`,
      );
    }
    this.#log.info(
      { dir: server.dir, port: server.port, adopted },
      `${adopted ? 'reusing the' : 'started an'} embedded redis-server (AOF on) in ${server.dir}`,
    );
    return server.url;
  }

  /** Graceful shutdown within `shutdownTimeoutMs`; safe to call more than once. */
  stop(): Promise<void> {
    this.#stopping ??= this.#teardown(this.config.daemon.shutdownTimeoutMs);
    return this.#stopping;
  }

  async #teardown(deadlineMs: number): Promise<void> {
    const started = Date.now();
    const left = (): number => Math.max(0, deadlineMs - (Date.now() - started));
    const log = this.#log;
    // Each step gets a share of what is left of the deadline and is abandoned when it runs out: with
    // Redis unreachable, commands wait for a reconnect that may never come.
    const step = async (
      name: string,
      share: number,
      run: () => Promise<unknown> | undefined,
    ): Promise<void> => {
      const budgetMs = Math.max(250, Math.floor(left() * share));
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), budgetMs);
      });
      const work = Promise.resolve()
        .then(run)
        .then(
          () => 'done' as const,
          (error: unknown) => {
            log.warn({ err: error }, `shutdown: ${name} failed`);
            return 'done' as const;
          },
        );
      const outcome = await Promise.race([work, timeout]);
      clearTimeout(timer);
      if (outcome === 'timeout')
        log.warn(`shutdown: ${name} did not finish within ${budgetMs} ms; moving on`);
    };
    log.info('shutting down: polling stops at the next page boundary, deliveries finish their batch');
    await step('push receivers', 0.1, () => this.#pushes?.close());
    await step('discovery', 0.1, () => this.#discovery?.stop());
    await step('link reconcilers', 0.1, () => this.#linkReconcilers?.stop());
    await step('backfill coordinator', 0.1, () => this.#backfillCoordinator?.stop());
    await step('schedule reconciler', 0.1, () => this.#reconciler?.stop());
    await step('poll workers', 0.6, () =>
      Promise.all([
        this.#pollWorker?.stop(Math.floor(left() * 0.5)),
        this.#backfillWorker?.stop(Math.floor(left() * 0.5)),
      ]),
    );
    await step('deliveries', 0.8, () => this.#sinks?.stop(Math.floor(left() * 0.7)));
    for (const closer of this.#closers.reverse()) {
      // Redis itself goes last and is cut below if a graceful QUIT does not get through.
      await step(`closing ${closer.name}`, 0.5, () => closer.close());
    }
    for (const connection of this.#connections) connection.disconnect();
    log.info({ ms: Date.now() - started }, 'shutdown complete');
  }
}

/** Leaf paths of the daemon settings that differ, e.g. `daemon.poll.concurrency`. */
function changedSettings(a: DaemonSettings, b: DaemonSettings): string[] {
  const changed: string[] = [];
  const walk = (x: unknown, y: unknown, path: string): void => {
    if (x && y && typeof x === 'object' && typeof y === 'object' && !Array.isArray(x)) {
      const keys = new Set([...Object.keys(x), ...Object.keys(y)]);
      for (const key of keys) {
        walk((x as Record<string, unknown>)[key], (y as Record<string, unknown>)[key], `${path}.${key}`);
      }
      return;
    }
    if (fingerprint(x) !== fingerprint(y)) changed.push(path);
  };
  walk(a, b, 'daemon');
  return changed;
}
