import { type Job, Worker } from 'bullmq';
import type { Logger } from 'pino';
import { redactedError } from '../config/redact.ts';
import type { ScopeSpec } from '../config/types.ts';
import { throttledErrorLog } from '../observability/logger.ts';
import type { RedisClient } from '../redis/client.ts';
import { POLL_QUEUE, type PollJobData } from './poll-queue.ts';
import type { Poller, PollResult } from './poller.ts';

export interface PollWorkerOptions {
  readonly connection: RedisClient;
  readonly prefix: string;
  readonly concurrency: number;
  readonly poller: Poller;
  /**
   * The scope a job names: configured, or discovered (published in Redis by the leader). A job for a
   * scope that resolves to nothing is skipped (a rollout with another config, a scope discovery dropped).
   */
  readonly resolve: (scopeKey: string) => Promise<ScopeSpec | undefined>;
  readonly log: Logger;
}

/**
 * Runs poll jobs from the queue. BullMQ gives distribution over replicas and crash recovery (stalled
 * jobs are re-run); the per-scope lease inside the poller gives what BullMQ cannot: no two polls of one
 * scope at once.
 */
export class PollWorker {
  readonly #o: PollWorkerOptions;
  readonly #shutdown = new AbortController();
  #worker: Worker<PollJobData> | undefined;

  constructor(options: PollWorkerOptions) {
    this.#o = options;
  }

  start(): void {
    this.#worker = new Worker<PollJobData>(POLL_QUEUE, (job) => this.#process(job), {
      connection: this.#o.connection,
      prefix: this.#o.prefix,
      concurrency: this.#o.concurrency,
      // A poll re-run after a stall is safe (lease + fenced commit), so tolerate a few stalls before failing.
      maxStalledCount: 3,
      removeOnComplete: { count: 0 },
      removeOnFail: { count: 1000, age: 24 * 3600 },
    });
    this.#worker.on('error', throttledErrorLog(this.#o.log, 'poll worker error (Redis unreachable?)'));
  }

  async #process(job: Job<PollJobData>): Promise<Omit<PollResult, 'error'>> {
    const scope = await this.#o.resolve(job.data.scope);
    if (!scope) {
      this.#o.log.debug(
        { scope: job.data.scope },
        'poll job for a scope not configured or discovered; skipped',
      );
      return { outcome: 'skipped' };
    }
    const result = await this.#o.poller.poll(scope, this.#shutdown.signal);
    // Failed polls fail their job too, so BullMQ tooling shows them; the poller has logged and counted it.
    // BullMQ stores message and stack in Redis: they are redacted here, whatever the error was.
    if (result.outcome === 'failed' && result.error) throw redactedError(result.error);
    const { error: _error, ...summary } = result as PollResult & { error?: Error };
    return summary;
  }

  /**
   * Stops taking jobs; running polls stop at their next page boundary (their work so far is committed)
   * and release their leases. After the deadline the worker is closed by force.
   */
  async stop(deadlineMs: number): Promise<void> {
    const worker = this.#worker;
    if (!worker) return;
    this.#shutdown.abort(new Error('shutdown'));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), deadlineMs);
    });
    const closed = await Promise.race([worker.close().then(() => 'closed' as const), timeout]);
    clearTimeout(timer);
    if (closed === 'timeout') {
      this.#o.log.warn('poll jobs did not stop before the deadline; closing the worker by force');
      await worker.close(true);
    }
  }
}
