import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { ScopeSpec } from '../config/types.ts';
import type { LeaderLock } from './leader.ts';
import { type PollJobData, scheduleOffsetMs, schedulerId } from './poll-queue.ts';

/** Leadership is renewed this often; the lock's TTL is three times as long. */
export const LEADER_RENEW_MS = 5_000;
export const LEADER_TTL_MS = 3 * LEADER_RENEW_MS;

export interface ReconcileResult {
  readonly added: number;
  readonly updated: number;
  readonly removed: number;
  /** Schedulers whose chain of jobs had broken (see `reconcile`) and was restarted. */
  readonly repaired: number;
}

/** How long past its next run a scheduler may be before its chain of jobs counts as broken. */
export function overdueAfterMs(everyMs: number): number {
  return Math.max(2 * everyMs, 5_000);
}

/**
 * Keeps BullMQ's job schedulers equal to the configured scopes: one scheduler per scope with its
 * interval and a stable per-scope phase; schedulers of scopes no longer configured are removed, so those
 * scopes stop being polled. Only the leader reconciles; it re-checks periodically, which also repairs
 * schedulers lost to a Redis restart without AOF, and chains of jobs a crash broke: BullMQ adds a
 * scheduler's next job in a separate step after a worker took the current one, so a worker killed in
 * between leaves no next job until the stalled one is recovered, a minute or more later.
 */
export class ScheduleReconciler {
  readonly #queue: Queue<PollJobData>;
  readonly #leader: LeaderLock;
  readonly #log: Logger;
  readonly #checkEveryMs: number;
  #scopes: readonly ScopeSpec[] = [];
  /** Where the scopes come from when they are not fixed: configured plus discovered (read from Redis). */
  #supplier: (() => Promise<readonly ScopeSpec[]>) | undefined;
  #leading = false;
  #dirty = true;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #lastFullCheckMs = 0;

  constructor(queue: Queue<PollJobData>, leader: LeaderLock, log: Logger, checkEveryMs: number) {
    this.#queue = queue;
    this.#leader = leader;
    this.#log = log;
    this.#checkEveryMs = checkEveryMs;
  }

  /** Sets the scopes to schedule and reconciles soon (at once if this process leads). */
  setScopes(scopes: readonly ScopeSpec[]): void {
    this.#scopes = scopes;
    this.#supplier = undefined;
    this.markDirty();
  }

  /**
   * Schedules whatever `supplier` returns, read afresh at each reconcile: the configured scopes plus
   * those discovery published in Redis, so a new leader schedules exactly what the old one did. If the
   * supplier fails, nothing is reconciled (a partial list must not unschedule scopes).
   */
  setScopeSupplier(supplier: () => Promise<readonly ScopeSpec[]>): void {
    this.#supplier = supplier;
    this.markDirty();
  }

  /** The scopes changed (e.g. discovery found or lost some): reconcile at the next tick, at once if leading. */
  markDirty(): void {
    this.#dirty = true;
    void this.tick();
  }

  start(): void {
    this.#timer = setInterval(() => void this.tick(), Math.min(LEADER_RENEW_MS, this.#checkEveryMs));
    this.#timer.unref();
    void this.tick();
  }

  /** One round: renew or take leadership, then reconcile if the scopes changed or a check is due. */
  async tick(): Promise<void> {
    if (this.#running) return this.#running;
    this.#running = (async () => {
      try {
        const leading = await this.#leader.tryLead();
        if (leading && !this.#leading) this.#log.info('leading: this process reconciles the poll schedules');
        this.#leading = leading;
        const due = Date.now() - this.#lastFullCheckMs >= this.#checkEveryMs;
        if (leading && (this.#dirty || due)) {
          this.#dirty = false;
          this.#lastFullCheckMs = Date.now();
          const scopes = this.#supplier ? await this.#supplier() : this.#scopes;
          const result = await this.reconcile(scopes);
          if (result.added + result.updated + result.removed + result.repaired > 0) {
            this.#log.info(result, `poll schedules reconciled with ${scopes.length} scopes`);
          }
        }
      } catch (error) {
        this.#dirty = true;
        this.#log.error({ err: error }, 'could not reconcile poll schedules; retrying');
      } finally {
        this.#running = undefined;
      }
    })();
    return this.#running;
  }

  async reconcile(scopes: readonly ScopeSpec[]): Promise<ReconcileResult> {
    const existing = new Map((await this.#queue.getJobSchedulers(0, -1)).map((s) => [s.key, s]));
    const wanted = new Set<string>();
    let added = 0;
    let updated = 0;
    let repaired = 0;
    for (const scope of scopes) {
      const id = schedulerId(scope.key);
      wanted.add(id);
      const every = scope.intervalMs;
      const offset = scheduleOffsetMs(scope.key, every);
      const current = existing.get(id);
      const unchanged = current !== undefined && current.every === every && (current.offset ?? 0) === offset;
      const overdue = current?.next !== undefined && current.next < Date.now() - overdueAfterMs(every);
      if (unchanged && !overdue) continue;
      await this.#queue.upsertJobScheduler(
        id,
        { every, offset },
        { name: 'poll', data: { scope: scope.key }, opts: { removeOnComplete: true, removeOnFail: 1000 } },
      );
      if (!current) {
        // The scheduler's first run waits for the scope's phase, up to a whole interval; a scope new
        // to the config is polled once right away instead.
        await this.#queue.add('poll', { scope: scope.key }, { removeOnComplete: true, removeOnFail: 1000 });
        added++;
      } else if (unchanged) repaired++;
      else updated++;
    }
    let removed = 0;
    for (const id of existing.keys()) {
      if (!wanted.has(id)) {
        await this.#queue.removeJobScheduler(id);
        removed++;
      }
    }
    return { added, updated, removed, repaired };
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
    if (this.#leading) await this.#leader.resign().catch(() => undefined);
  }
}
