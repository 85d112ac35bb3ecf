import type { Logger } from 'pino';
import type { ScopeSpec } from '../config/types.ts';
import { TransportError } from '../http/errors.ts';
import type { Metrics } from '../observability/metrics.ts';
import { ProviderError } from '../sources/errors.ts';
import type { Checkpoint, Source, TimeRange } from '../sources/source.ts';
import { type Committer, type IdConflict, LeaseLostError } from './commit.ts';
import type { LeaseManager } from './lease.ts';
import type { OutboxMonitor } from './outbox.ts';
import type { PathRecorder } from './paths.ts';
import type { PollOutcomeKind, ScopeStateStore } from './scope-state.ts';

export interface PollerDeps {
  readonly sources: ReadonlyMap<string, Source>;
  readonly leases: LeaseManager;
  readonly committer: Committer;
  readonly outbox: OutboxMonitor;
  readonly state: ScopeStateStore;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly leaseTtlMs: number;
  readonly outboxMaxLength: number;
  readonly now?: () => number;
  /**
   * A scope that answered 404 is polled only this often until it answers again (default: every poll).
   * Its checkpoint does not move meanwhile, so nothing is lost if it comes back.
   */
  readonly notFoundRecheckMs?: number;
  /** Told about the first 404 of a run (discovery walks the scope's root again early). */
  readonly onScopeNotFound?: (scope: ScopeSpec) => Promise<void>;
  /**
   * Told, once per scope and process, about history the scope's lookback asked for that its live lane
   * left to a backfill (a lookback longer than one window).
   */
  readonly onHistoryOwed?: (scope: ScopeSpec, range: TimeRange) => Promise<void>;
  /**
   * `backfill` for the history lane: its events are old by design, so they stay out of the late-arrival
   * histogram (which sizes `overlap`) and its watermark out of the checkpoint-lag gauge (which alerts).
   */
  readonly lane?: 'live' | 'backfill';
  /**
   * Set while a push provider runs beside the poller: the ids of each page of the scopes it tracks are
   * recorded for the poll → push migration view (`status`), after the page's commit.
   */
  readonly paths?: { readonly recorder: PathRecorder; readonly tracks: (scope: ScopeSpec) => boolean };
}

export type PollResult =
  | { readonly outcome: 'skipped' }
  | {
      readonly outcome: PollOutcomeKind;
      readonly pages: number;
      readonly added: number;
      readonly duplicates: number;
      readonly error?: Error;
    };

/**
 * One poll of one scope: take the lease, read pages from the source from the stored checkpoint, commit
 * each page atomically, stop early when an outbox is full, shutdown begins or the lease is lost. Never
 * throws for provider trouble: the outcome says what happened and the next poll resumes from the last
 * commit, so nothing is skipped.
 */
export class Poller {
  readonly #deps: PollerDeps;
  readonly #now: () => number;
  /** Scopes whose owed history was handed on (or found to be none) by this process. */
  readonly #owedChecked = new Set<string>();

  constructor(deps: PollerDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
  }

  async poll(scope: ScopeSpec, shutdown: AbortSignal): Promise<PollResult> {
    const { leases, metrics } = this.#deps;
    const recheckMs = this.#deps.notFoundRecheckMs;
    const notFound = recheckMs === undefined ? undefined : await this.#deps.state.notFound(scope.key);
    if (notFound !== undefined && this.#now() - notFound.checkedAtMs < (recheckMs ?? 0)) {
      metrics.polls.inc({ provider: scope.providerType, outcome: 'skipped' });
      this.#deps.log.debug(
        { scope: scope.key, notFoundSince: new Date(notFound.sinceMs).toISOString() },
        'scope answered 404; not polled again before its re-check is due',
      );
      return { outcome: 'skipped' };
    }
    const waitUntilMs = await this.#deps.state.waitUntil(scope.key);
    if (waitUntilMs !== undefined && this.#now() < waitUntilMs) {
      // Honoured without holding a worker slot: the job ends at once and a later one polls.
      metrics.polls.inc({ provider: scope.providerType, outcome: 'skipped' });
      this.#deps.log.debug(
        { scope: scope.key, waitUntil: new Date(waitUntilMs).toISOString() },
        'the provider asked this scope to wait (Retry-After); not polled before then',
      );
      return { outcome: 'skipped' };
    }
    const lease = await leases.acquire(scope.key, this.#deps.leaseTtlMs);
    if (!lease) {
      metrics.leaseConflicts.inc();
      metrics.polls.inc({ provider: scope.providerType, outcome: 'skipped' });
      this.#deps.log.debug({ scope: scope.key }, 'another poll holds this scope; skipped');
      return { outcome: 'skipped' };
    }
    // The fencing token is unique per poll: every line of this poll carries it as its request id.
    const log = this.#deps.log.child({ scope: scope.key, poll: lease.token });

    const abort = new AbortController();
    const onShutdown = (): void => abort.abort(new Error('shutdown'));
    shutdown.addEventListener('abort', onShutdown, { once: true });
    let leaseLost: string | undefined;
    const stopKeepAlive = lease.keepAlive((why) => {
      leaseLost = why;
      abort.abort(new LeaseLostError(scope.key));
    });

    const startedAtMs = this.#now();
    log.debug('poll started');
    const timer = metrics.pollSeconds.startTimer({ provider: scope.providerType });
    const progress: Progress = { pages: 0, added: 0, duplicates: 0, checkpoint: undefined };
    let outcome: PollOutcomeKind = 'completed';
    let failure: Error | undefined;
    try {
      const full = await this.#deps.outbox.fullestOver(scope.sinks, this.#deps.outboxMaxLength);
      if (full) {
        outcome = 'paused';
        this.#paused(full, scope, log);
      } else {
        outcome = await this.#pull(scope, lease, abort.signal, progress, log);
      }
    } catch (error) {
      if (shutdown.aborted || leaseLost !== undefined || error instanceof LeaseLostError) {
        outcome = 'interrupted';
        if (leaseLost !== undefined || error instanceof LeaseLostError) {
          log.warn(`poll stopped: ${leaseLost ?? (error as Error).message}`);
        }
      } else {
        outcome = 'failed';
        failure = error instanceof Error ? error : new Error(String(error));
        this.#failed(failure, scope, log);
      }
    } finally {
      stopKeepAlive();
      shutdown.removeEventListener('abort', onShutdown);
      timer();
      // Logged while the lease is still held: "poll started"/"poll ended" bracket the exclusive section.
      log.debug({ outcome, ...progress }, 'poll ended');
      // A wait the provider asked for is recorded before the lease goes, so no poll slips in between.
      const waitMs = failure instanceof ProviderError ? failure.retryAfterMs : undefined;
      if (waitMs !== undefined) {
        await this.#deps.state.deferUntil(scope.key, this.#now() + waitMs).catch(() => undefined);
      }
      await lease.release().catch(() => undefined);
    }

    await this.#afterPoll(scope, outcome, failure, notFound !== undefined, progress.checkpoint, log);
    metrics.polls.inc({ provider: scope.providerType, outcome });
    const endedAtMs = this.#now();
    const waitMs = failure instanceof ProviderError ? failure.retryAfterMs : undefined;
    if (waitMs !== undefined) {
      log.warn(
        { waitMs, waitUntil: new Date(endedAtMs + waitMs).toISOString() },
        `the provider asked ${scope.key} to wait ${Math.ceil(waitMs / 1000)} s; it is not polled before then and holds no worker meanwhile`,
      );
    }
    await this.#deps.state
      .recordPoll(scope.key, {
        outcome,
        startedAtMs,
        endedAtMs,
        added: progress.added,
        error: failure ? { reason: reasonOf(failure), message: failure.message } : undefined,
        waitUntilMs: waitMs === undefined ? undefined : endedAtMs + waitMs,
      })
      .catch((error: unknown) => log.warn({ err: error }, 'could not record the poll outcome'));
    const { checkpoint: _checkpoint, ...counts } = progress;
    return { outcome, ...counts, ...(failure ? { error: failure } : {}) };
  }

  /** What a poll's outcome means beyond its own scope: a 404 run, a scope found again, owed history. */
  async #afterPoll(
    scope: ScopeSpec,
    outcome: PollOutcomeKind,
    failure: Error | undefined,
    wasNotFound: boolean,
    checkpoint: Checkpoint | undefined,
    log: Logger,
  ): Promise<void> {
    const { state, metrics } = this.#deps;
    try {
      const retired = failure instanceof ProviderError && failure.reason === 'api_retired';
      if (retired) metrics.apiRetired.inc({ provider: scope.providerType });
      if (retired && (await state.markNotFound(scope.key, this.#now()))) {
        log.error(
          `${scope.key}: the provider's audit-log API answers that it is gone (${failure.message}). ` +
            'Polling cannot continue; it is only re-checked slowly. For STACKIT, receive the events from the ' +
            'Telemetry Router instead (a stackit-telemetry provider, docs/stackit.md)',
        );
      } else if (failure instanceof ProviderError && failure.reason === 'scope_not_found') {
        metrics.scopeNotFound.inc({ provider: scope.providerType, scope_kind: scope.ref.kind });
        if (await state.markNotFound(scope.key, this.#now())) {
          log.warn(
            { recheckEveryMs: this.#deps.notFoundRecheckMs },
            `${scope.key} answered 404: deleted, or out of the credential's reach. It is re-checked ` +
              `${this.#deps.notFoundRecheckMs === undefined ? 'every poll' : `every ${Math.round(this.#deps.notFoundRecheckMs / 1000)} s`}; ` +
              'its checkpoint stays, so it resumes without loss if it answers again',
          );
          await this.#deps.onScopeNotFound?.(scope);
        }
      } else if (wasNotFound && (outcome === 'completed' || outcome === 'paused')) {
        await state.clearNotFound(scope.key);
        log.info(`${scope.key} answers again after a 404; polling resumes at its interval`);
      }
      const source = this.#deps.sources.get(scope.provider);
      const onOwed = this.#deps.onHistoryOwed;
      if (onOwed && source?.history && checkpoint !== undefined && !this.#owedChecked.has(scope.key)) {
        const pollScope = {
          key: scope.key,
          provider: scope.provider,
          ref: scope.ref,
          settings: scope.settings,
        };
        const owed = source.history.owedHistory(pollScope, checkpoint);
        if (owed !== undefined) await onOwed(scope, owed);
        this.#owedChecked.add(scope.key);
      }
    } catch (error) {
      log.warn(
        { err: error },
        'could not record what the poll found out about its scope; the next poll tries again',
      );
    }
  }

  async #pull(
    scope: ScopeSpec,
    lease: Parameters<Committer['commit']>[0],
    signal: AbortSignal,
    progress: Progress,
    log: Logger,
  ): Promise<PollOutcomeKind> {
    const { metrics } = this.#deps;
    const source = this.#deps.sources.get(scope.provider);
    if (!source) throw new Error(`no source for provider "${scope.provider}"`);
    const stored = await this.#deps.state.checkpoint(scope.key);
    const newestSeenMs = stored ? undefined : await this.#deps.state.newestSeenMs(scope.key);
    progress.checkpoint = stored?.checkpoint;
    const labels = { provider: scope.providerType, scope_kind: scope.ref.kind };
    const pollScope = { key: scope.key, provider: scope.provider, ref: scope.ref, settings: scope.settings };
    const ctx = { signal, log, now: this.#now, newestSeenMs };

    // Up to where earlier commits had read the scope's log: an event older than this that is new now
    // became visible after a poll had covered its time, i.e. a late arrival. A scope's first lookback
    // (no checkpoint yet) and events newer than the mark are simply new, not late.
    let coveredUntilMs = stored?.checkpoint.watermarkMs;
    for await (const page of source.pull(pollScope, stored?.checkpoint, ctx)) {
      const seenAtMs = this.#now();
      const result = await this.#deps.committer.commit(lease, scope.key, scope.sinks, page, seenAtMs);
      progress.checkpoint = page.checkpoint;
      progress.pages++;
      const paths = this.#deps.paths;
      if (paths && this.#deps.lane !== 'backfill' && paths.tracks(scope)) {
        await paths.recorder
          .polled(scope.key, page.events, seenAtMs)
          .catch((error: unknown) =>
            log.warn({ err: error }, 'could not record polled ids for the migration view'),
          );
      }
      progress.added += result.added.length;
      progress.duplicates += result.duplicates;
      metrics.eventsFetched.inc(labels, page.events.length);
      if (result.added.length > 0) metrics.eventsCommitted.inc(labels, result.added.length);
      if (result.duplicates > 0) metrics.eventsDeduplicated.inc(labels, result.duplicates);
      for (const conflict of result.conflicts) this.#idConflict(conflict, scope, log);
      if (page.outsideRange) metrics.eventsOutsideRange.inc(labels, page.outsideRange);
      const covered = coveredUntilMs;
      if (covered !== undefined && this.#deps.lane !== 'backfill') {
        for (const event of result.added) {
          if (event.timeMs >= covered) continue;
          metrics.lateArrivalSeconds.observe(
            { provider: scope.providerType },
            Math.max(0, (seenAtMs - event.timeMs) / 1000),
          );
        }
      }
      const watermark = page.checkpoint.watermarkMs;
      if (watermark !== undefined) coveredUntilMs = Math.max(coveredUntilMs ?? watermark, watermark);
      if (result.longestOutbox >= this.#deps.outboxMaxLength) {
        const full = await this.#deps.outbox.fullestOver(scope.sinks, this.#deps.outboxMaxLength);
        if (full) {
          this.#paused(full, scope, log);
          return 'paused';
        }
      }
      signal.throwIfAborted();
    }
    return 'completed';
  }

  /** Never dropped, never silent: the variant was delivered, and operators hear that a copy differed. */
  #idConflict(conflict: IdConflict, scope: ScopeSpec, log: Logger): void {
    this.#deps.metrics.eventIdConflicts.inc({ provider: scope.providerType, scope_kind: scope.ref.kind });
    log.warn(
      {
        provider: scope.provider,
        eventId: conflict.event.originalId,
        deliveredAs: conflict.event.id,
        firstRawSha256: conflict.firstRawSha256,
      },
      `provider "${scope.provider}", scope ${scope.key}: event id ${conflict.event.originalId} came again with other bytes; ` +
        'both copies are delivered, the later one under its own id with an id_conflict anomaly',
    );
  }

  #paused(full: { sink: string; length: number }, scope: ScopeSpec, log: Logger): void {
    this.#deps.metrics.outboxFullPauses.inc({ sink: full.sink });
    log.warn(
      { sink: full.sink, outboxLength: full.length, cap: this.#deps.outboxMaxLength },
      `outbox of sink "${full.sink}" is full (${full.length} of ${this.#deps.outboxMaxLength}); polling of ${scope.key} pauses until it drains`,
    );
  }

  #failed(error: Error, scope: ScopeSpec, log: Logger): void {
    const reason = reasonOf(error);
    this.#deps.metrics.pollErrors.inc({ provider: scope.providerType, reason });
    log.error(
      { reason, status: error instanceof ProviderError ? error.status : undefined },
      `poll failed: ${error.message}`,
    );
  }
}

interface Progress {
  pages: number;
  added: number;
  duplicates: number;
  /** The scope's checkpoint as last read or committed. */
  checkpoint: Checkpoint | undefined;
}

function reasonOf(error: Error): string {
  if (error instanceof ProviderError) return error.reason;
  if (error instanceof TransportError) return error.failure;
  return 'internal';
}
