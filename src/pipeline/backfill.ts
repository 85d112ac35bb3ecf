import { type Job, type Queue, Worker } from 'bullmq';
import type { Logger } from 'pino';
import type { ScopeSpec } from '../config/types.ts';
import { backoffDelayMs } from '../http/retry.ts';
import { throttledErrorLog } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { RedisClient } from '../redis/client.ts';
import type { Page, Source, TimeRange } from '../sources/source.ts';
import { type BackfillRun, type BackfillStore, backfillScopeKey } from './backfill-store.ts';
import type { ScopeCatalog } from './discovery-catalog.ts';
import type { LeaderLock } from './leader.ts';
import { Poller, type PollerDeps, type PollResult } from './poller.ts';
import type { ScopeStateStore } from './scope-state.ts';

/**
 * The backfill lane: history older than a scope's live floor, read in 24 h windows oldest first by its
 * own BullMQ queue and workers (their own concurrency), at backfill priority in the request budget, so
 * it never starves live polling. Each scope's backfill is a scope of its own (`<scope>#backfill`) with
 * its own checkpoint, seen-set and fenced lease, committing into the same outboxes; its range ends where
 * the live lane's begins, so the two never ship one event twice (docs/stackit.md).
 *
 * Jobs are slices: one reads for at most `sliceMs`, then completes, and the leader's coordinator
 * enqueues the next slice of every unfinished run. That gives round robin over scopes, and a run whose
 * job died with its process simply gets a new job; progress lives in the checkpoint, not in the job.
 */

export const BACKFILL_QUEUE = 'backfill';
/** How long a run whose rest is not settled yet waits before its next slice. */
const DEFER_MS = 30_000;

export interface BackfillJobData {
  readonly scope: string;
  readonly runId: string;
}

const LIVE_JOB_STATES = new Set(['waiting', 'delayed', 'prioritized', 'active', 'waiting-children']);

export interface BackfillCoordinatorOptions {
  readonly queue: Queue<BackfillJobData>;
  readonly store: BackfillStore;
  readonly state: ScopeStateStore;
  readonly catalog: ScopeCatalog;
  readonly leader: LeaderLock;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** How often the leader checks the runs (default 2 s). */
  readonly tickMs?: number;
}

/** The leader's loop: every unfinished run has exactly one job waiting or running. */
export class BackfillCoordinator {
  readonly #o: BackfillCoordinatorOptions;
  readonly #unresolved = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(options: BackfillCoordinatorOptions) {
    this.#o = options;
  }

  start(): void {
    this.#timer = setInterval(() => void this.tick(), this.#o.tickMs ?? 2_000);
    this.#timer.unref();
    void this.tick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#running;
  }

  tick(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    this.#running ??= this.#round()
      .catch((error: unknown) => this.#o.log.error({ err: error }, 'backfill coordination failed; retrying'))
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
  }

  async #round(): Promise<void> {
    const { store, queue, catalog, leader, log, metrics, state } = this.#o;
    if (!(await leader.tryLead())) return;
    const runs = await store.list();
    let running = 0;
    let remainingMs = 0;
    for (const run of runs) {
      if (run.status !== 'running') {
        if (metrics.perScope) metrics.backfillRemainingSeconds.remove({ scope: run.scope });
        continue;
      }
      running++;
      const stored = await state.checkpoint(backfillScopeKey(run.scope));
      const readUntil = Math.max(run.fromMs, stored?.checkpoint.watermarkMs ?? run.fromMs);
      remainingMs += Math.max(0, run.toMs - readUntil);
      if (metrics.perScope) {
        metrics.backfillRemainingSeconds.set(
          { scope: run.scope },
          Math.max(0, (run.toMs - readUntil) / 1000),
        );
      }
      if ((await catalog.resolve(run.scope)) === undefined) {
        if (!this.#unresolved.has(run.runId)) {
          this.#unresolved.add(run.runId);
          log.warn(
            { scope: run.scope },
            `backfill of ${run.scope} waits: the scope is neither configured nor discovered (any more)`,
          );
        }
        continue;
      }
      const jobState = run.jobId === undefined ? 'unknown' : await queue.getJobState(run.jobId);
      if (LIVE_JOB_STATES.has(jobState)) continue;
      const jobId = await store.nextJob(run);
      const backoff =
        run.failures > 0 ? backoffDelayMs(run.failures, { initialMs: 1_000, maxMs: 5 * 60_000 }) : 0;
      const delay = Math.max(backoff, (run.notBeforeMs ?? 0) - Date.now());
      await queue.add(
        'backfill',
        { scope: run.scope, runId: run.runId },
        { jobId, delay, removeOnComplete: true, removeOnFail: 100 },
      );
    }
    if (!metrics.perScope) metrics.backfillRemainingSeconds.set({ scope: '' }, remainingMs / 1000);
    metrics.backfillRuns.set({ status: 'running' }, running);
    metrics.backfillRuns.set({ status: 'done' }, runs.length - running);
  }
}

export interface BackfillWorkerOptions {
  readonly connection: RedisClient;
  readonly prefix: string;
  readonly concurrency: number;
  readonly sliceMs: number;
  /** BullMQ job lock; a job whose worker died is taken up again within about this long. */
  readonly lockDurationMs: number;
  readonly store: BackfillStore;
  readonly state: ScopeStateStore;
  readonly catalog: ScopeCatalog;
  readonly sources: ReadonlyMap<string, Source>;
  /** Everything a Poller needs except the sources (the worker wraps them for the range it reads). */
  readonly poller: Omit<PollerDeps, 'sources' | 'onHistoryOwed' | 'onScopeNotFound' | 'lane'>;
  readonly log: Logger;
  readonly now?: () => number;
}

/** Runs backfill slices: one job reads one run's range from its checkpoint on, for at most a slice. */
export class BackfillWorker {
  readonly #o: BackfillWorkerOptions;
  readonly #now: () => number;
  readonly #shutdown = new AbortController();
  #worker: Worker<BackfillJobData> | undefined;

  constructor(options: BackfillWorkerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  start(): void {
    if (this.#o.concurrency < 1) return;
    this.#worker = new Worker<BackfillJobData>(BACKFILL_QUEUE, (job) => this.#process(job), {
      connection: this.#o.connection,
      prefix: this.#o.prefix,
      concurrency: this.#o.concurrency,
      lockDuration: this.#o.lockDurationMs,
      stalledInterval: this.#o.lockDurationMs,
      // A slice run again after a crash resumes from its checkpoint; nothing is lost by retrying.
      maxStalledCount: 10,
      removeOnComplete: { count: 0 },
      removeOnFail: { count: 100, age: 24 * 3600 },
    });
    this.#worker.on('error', throttledErrorLog(this.#o.log, 'backfill worker error (Redis unreachable?)'));
  }

  /** Runs one slice of the job's run now, in this process (the command-line tools and tests use it). */
  runSlice(data: BackfillJobData): Promise<PollResult | undefined> {
    return this.#slice(data);
  }

  async #process(job: Job<BackfillJobData>): Promise<{ outcome: string }> {
    const result = await this.#slice(job.data);
    return { outcome: result?.outcome ?? 'skipped' };
  }

  async #slice(data: BackfillJobData): Promise<PollResult | undefined> {
    const { store, catalog, sources, log } = this.#o;
    const run = await store.get(data.scope);
    if (run === undefined || run.runId !== data.runId || run.status !== 'running') return undefined;
    const live = await catalog.resolve(run.scope);
    const source = live === undefined ? undefined : sources.get(live.provider);
    const history = source?.history;
    if (live === undefined || source === undefined || history === undefined) {
      log.warn(
        { scope: run.scope },
        `backfill of ${run.scope} cannot run here: scope or provider unknown to this process`,
      );
      return undefined;
    }
    const range: TimeRange = { fromMs: run.fromMs, toMs: run.toMs };
    const scopeLog = log.child({ backfill: run.scope, run: run.runId });
    const adapter: Source = {
      pull: (scope, checkpoint, ctx) =>
        reporting(history.pullRange(scope, range, checkpoint, ctx), run, scopeLog),
      close: async () => {},
    };
    const poller = new Poller({
      ...this.#o.poller,
      lane: 'backfill',
      sources: new Map([[live.provider, adapter]]),
    });
    const virtual: ScopeSpec = { ...live, key: backfillScopeKey(live.key) };
    const slice = AbortSignal.any([this.#shutdown.signal, AbortSignal.timeout(this.#o.sliceMs)]);
    const result = await poller.poll(virtual, slice);
    if (result.outcome === 'failed') {
      await store.recordFailure(run, result.error?.message ?? 'failed');
      return result;
    }
    if (result.outcome !== 'completed') return result;
    await store.recordProgress(run);
    const stored = await this.#o.state.checkpoint(virtual.key);
    const done = (stored?.checkpoint.watermarkMs ?? Number.NEGATIVE_INFINITY) >= run.toMs;
    if (!done && result.pages === 0) {
      // Nothing was readable yet (the end of the range is too recent to be settled): ask again later.
      await store.defer(run, this.#now() + DEFER_MS);
    }
    if (done) {
      if (await store.complete(run, this.#now())) {
        scopeLog.info(
          { fromMs: run.fromMs, toMs: run.toMs, committed: stored?.committed ?? 0 },
          `backfill of ${run.scope} complete: ${iso(run.fromMs)} to ${iso(run.toMs)} read, ${stored?.committed ?? 0} events committed in all`,
        );
      }
    }
    return result;
  }

  async stop(deadlineMs: number): Promise<void> {
    const worker = this.#worker;
    this.#shutdown.abort(new Error('shutdown'));
    if (!worker) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), deadlineMs);
    });
    const closed = await Promise.race([worker.close().then(() => 'closed' as const), timeout]);
    clearTimeout(timer);
    if (closed === 'timeout') await worker.close(true);
  }
}

/** Logs a backfill's progress as it commits pages: at most every 10 s, and at the end of its range. */
async function* reporting(pages: AsyncIterable<Page>, run: BackfillRun, log: Logger): AsyncIterable<Page> {
  let loggedAt = 0;
  let events = 0;
  for await (const page of pages) {
    events += page.events.length;
    yield page;
    const watermark = page.checkpoint.watermarkMs;
    if (watermark === undefined) continue;
    const now = Date.now();
    if (now - loggedAt < 10_000 && watermark < run.toMs) continue;
    loggedAt = now;
    const progress = describeProgress(run, watermark);
    log.info(
      {
        progress: progress.fraction,
        windowsDone: progress.windowsDone,
        windows: progress.windows,
        eventsRead: events,
      },
      `backfill of ${run.scope}: ${progress.windowsDone} of ${progress.windows} days read, up to ${iso(Math.min(watermark, run.toMs))}`,
    );
  }
}

const DAY_MS = 86_400_000;

export interface BackfillProgress {
  /** 0 to 1. */
  readonly fraction: number;
  /** 24 h windows read completely, of all in the run. */
  readonly windowsDone: number;
  readonly windows: number;
  /** Everything before this is read. */
  readonly readUntilMs: number;
}

export function describeProgress(run: BackfillRun, watermarkMs: number | undefined): BackfillProgress {
  const span = Math.max(1, run.toMs - run.fromMs);
  const readUntilMs =
    run.status === 'done' ? run.toMs : Math.min(run.toMs, Math.max(run.fromMs, watermarkMs ?? run.fromMs));
  return {
    fraction: Math.min(1, (readUntilMs - run.fromMs) / span),
    windowsDone: Math.ceil((readUntilMs - run.fromMs) / DAY_MS - 1e-9),
    windows: Math.ceil(span / DAY_MS - 1e-9),
    readUntilMs,
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
