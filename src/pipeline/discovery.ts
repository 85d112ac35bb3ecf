import type { Logger } from 'pino';
import type { ScopeSpec } from '../config/types.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { DiscoveredScope, DiscoveryPlan, Source } from '../sources/source.ts';
import { scopeKey } from '../sources/source.ts';
import { pollScope, type ScopeCatalog } from './discovery-catalog.ts';
import {
  type DiscoveredEntry,
  type DiscoveryStore,
  type EntryState,
  entryState,
  type RootRecord,
} from './discovery-store.ts';
import type { RedisKeys } from './keys.ts';
import type { LeaderLock } from './leader.ts';

/** Policy for scopes whose root left the config: they fade out like deleted ones. */
const ORPHAN_PLAN: DiscoveryPlan = {
  intervalMs: 3_600_000,
  gracePeriodMs: 2 * 3_600_000,
  forgetAfterMs: 90 * 86_400_000,
};

export interface DiscoveryServiceOptions {
  readonly catalog: ScopeCatalog;
  readonly store: DiscoveryStore;
  readonly sources: ReadonlyMap<string, Source>;
  readonly leader: LeaderLock;
  readonly leaderKey: string;
  /** This process's leader-lock holder id. */
  readonly holder: string;
  readonly keys: RedisKeys;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Called after a change that adds or removes scopes to poll (the scheduler reconciles). */
  readonly onChange: () => void;
  /** How often the leader checks whether a walk is due (default 5 s). */
  readonly tickMs?: number;
  /** Shortest time between two walks of one root when polls ask for one early (default 30 s). */
  readonly minRecheckGapMs?: number;
  readonly now?: () => number;
}

/**
 * The leader's discovery loop. For every configured scope that discovers, it walks the provider's
 * hierarchy on the scope's interval (or early, when a discovered scope answered 404), and moves each
 * discovered scope through its life: active → missing (not found by a successful walk; still polled)
 * → gone after the grace period (no longer polled; its checkpoint and seen-set stay) → forgotten after
 * `forgetAfter` (its state is deleted). A scope found again at any point before it is forgotten resumes
 * from its checkpoint, so a project that disappears and comes back loses nothing. A failed walk changes
 * nothing: a partial answer must never make scopes look deleted.
 */
export class DiscoveryService {
  readonly #o: DiscoveryServiceOptions;
  readonly #now: () => number;
  readonly #stop = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(options: DiscoveryServiceOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  start(): void {
    this.#timer = setInterval(() => void this.tick(), this.#o.tickMs ?? 5_000);
    this.#timer.unref();
    void this.tick();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#stop.abort(new Error('shutdown'));
    await this.#running;
  }

  /** One round, if this process leads; concurrent calls share it. */
  tick(): Promise<void> {
    this.#running ??= this.#round()
      .catch((error: unknown) => {
        if (!this.#stop.signal.aborted) this.#o.log.error({ err: error }, 'discovery round failed; retrying');
      })
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
  }

  async #round(): Promise<void> {
    const { store, catalog, leader, log } = this.#o;
    if (!(await leader.tryLead())) return;
    const [entries, records, rechecks] = await Promise.all([
      store.entries((key) =>
        log.error({ scope: key }, 'discovered scope entry in Redis is unreadable; ignored'),
      ),
      store.roots(),
      store.rechecks(),
    ]);
    const roots = catalog.roots();
    let changed = false;
    for (const { scope, plan } of roots) {
      if (this.#stop.signal.aborted) return;
      const record = records.get(scope.key);
      const recheckAt = rechecks.get(scope.key);
      const now = this.#now();
      const lastRun = record?.lastRunMs;
      const recheckDue =
        recheckAt !== undefined &&
        (lastRun === undefined || recheckAt > lastRun) &&
        now - (lastRun ?? 0) >= Math.min(this.#o.minRecheckGapMs ?? 30_000, plan.intervalMs);
      const due = lastRun === undefined || now - lastRun >= plan.intervalMs || recheckDue;
      let found: Map<string, DiscoveredScope> | undefined;
      let error: Error | undefined;
      if (due) {
        try {
          found = await this.#walk(scope);
        } catch (failure) {
          if (this.#stop.signal.aborted) return;
          error = failure instanceof Error ? failure : new Error(String(failure));
        }
      }
      changed = (await this.#settle(scope.key, plan, entries, record, found, error, due)) || changed;
      if (due && recheckAt !== undefined) await store.clearRecheck(scope.key, recheckAt);
    }
    // Scopes of roots that left the config fade out like deleted ones (no walk can find them any more).
    const rootKeys = new Set(roots.map((r) => r.scope.key));
    const orphanRoots = new Set(
      [...entries.values()].map((e) => e.root).filter((root) => !rootKeys.has(root)),
    );
    for (const root of orphanRoots) {
      changed =
        (await this.#settle(root, ORPHAN_PLAN, entries, records.get(root), undefined, undefined, false)) ||
        changed;
    }
    this.#gauge(entries);
    if (changed) this.#o.onChange();
  }

  async #walk(root: ScopeSpec): Promise<Map<string, DiscoveredScope>> {
    const { sources, metrics, log } = this.#o;
    const discovery = sources.get(root.provider)?.discovery;
    if (discovery === undefined) throw new Error(`provider "${root.provider}" cannot discover`);
    const started = this.#now();
    try {
      const found = await discovery.discover(pollScope(root), {
        signal: this.#stop.signal,
        log: log.child({ discovery: root.key }),
      });
      metrics.discoveryRuns.inc({ provider: root.providerType, outcome: 'ok' });
      log.debug({ root: root.key, found: found.length, ms: this.#now() - started }, 'discovery walk done');
      return new Map(found.map((scope) => [scopeKey(root.providerType, scope.ref), scope]));
    } catch (error) {
      metrics.discoveryRuns.inc({ provider: root.providerType, outcome: 'failed' });
      log.error(
        { root: root.key, err: error instanceof Error ? error.message : String(error) },
        `discovery under ${root.key} failed; the scopes it knew are kept and polled as before`,
      );
      throw error;
    }
  }

  /**
   * Moves the root's scopes on by what the walk found (if it ran and succeeded) and by time, and writes
   * the result fenced by leadership and the root's version. Returns whether the set of polled scopes
   * changed. `entries` is updated in place with what was written.
   */
  async #settle(
    root: string,
    plan: DiscoveryPlan,
    entries: Map<string, DiscoveredEntry>,
    record: RootRecord | undefined,
    found: Map<string, DiscoveredScope> | undefined,
    error: Error | undefined,
    walked: boolean,
  ): Promise<boolean> {
    const { log, metrics, catalog } = this.#o;
    const now = this.#now();
    const upserts = new Map<string, DiscoveredEntry>();
    const forget: string[] = [];
    let pollingChanged = false;
    const note = (change: string, key: string, message: string, level: 'info' | 'warn' = 'info'): void => {
      metrics.discoveryChanges.inc({ change });
      log[level]({ scope: key, root, change }, message);
    };

    for (const [key, entry] of entries) {
      if (entry.root !== root) continue;
      const state: EntryState = entryState(entry);
      const hit = found?.get(key);
      if (hit !== undefined) {
        const { missingSinceMs: _m, goneSinceMs: _g, ...rest } = entry;
        upserts.set(key, { ...rest, lastSeenMs: now, ...(hit.name ? { name: hit.name } : {}) });
        if (state !== 'active') {
          note('returned', key, `${key} is back under ${root}; it resumes from its checkpoint`);
          if (state === 'gone') pollingChanged = true;
        }
      } else if (found !== undefined && state === 'active') {
        upserts.set(key, { ...entry, missingSinceMs: now });
        note(
          'missing',
          key,
          `${key} was not found under ${root}; it is polled ${Math.round(plan.gracePeriodMs / 60_000)} more minutes unless it shows up again`,
          'warn',
        );
      } else if (state === 'missing' && now - (entry.missingSinceMs as number) >= plan.gracePeriodMs) {
        upserts.set(key, { ...entry, goneSinceMs: now });
        pollingChanged = true;
        note(
          'gone',
          key,
          `${key} has been missing under ${root} for the grace period; it is no longer polled. Its checkpoint is kept until ${new Date(now + plan.forgetAfterMs).toISOString()}, so it resumes without loss if it comes back`,
          'warn',
        );
      } else if (state === 'gone' && now - (entry.goneSinceMs as number) >= plan.forgetAfterMs) {
        forget.push(key);
        note(
          'forgotten',
          key,
          `${key} was gone for ${Math.round(plan.forgetAfterMs / 86_400_000)} days; its checkpoint and dedupe set are deleted`,
          'warn',
        );
      }
    }
    if (found !== undefined) {
      for (const [key, scope] of found) {
        if (upserts.has(key) || catalog.isConfigured(key)) continue;
        const existing = entries.get(key);
        if (existing !== undefined && existing.root === root) continue;
        // Another root's walk found it first (overlapping roots): it stays there unless it is gone there.
        if (existing !== undefined && entryState(existing) !== 'gone') continue;
        upserts.set(key, {
          root,
          ref: { kind: scope.ref.kind, id: scope.ref.id },
          ...(scope.name ? { name: scope.name } : {}),
          firstSeenMs: existing?.firstSeenMs ?? now,
          lastSeenMs: now,
        });
        pollingChanged = true;
        note(existing ? 'returned' : 'added', key, `${key} discovered under ${root}; polling starts`);
      }
    }
    if (!walked && upserts.size === 0 && forget.length === 0) return false;

    const result = await this.#o.store.apply(this.#o.holder, this.#o.leaderKey, {
      root,
      expectedVersion: record?.version ?? 0,
      record: {
        ...(walked
          ? { lastRunMs: now }
          : record?.lastRunMs !== undefined
            ? { lastRunMs: record.lastRunMs }
            : {}),
        ...(found !== undefined
          ? { lastSuccessMs: now, found: found.size }
          : {
              ...(record?.lastSuccessMs !== undefined ? { lastSuccessMs: record.lastSuccessMs } : {}),
              ...(record?.found !== undefined ? { found: record.found } : {}),
            }),
        ...(error !== undefined ? { lastError: error.message.slice(0, 500) } : {}),
      },
      upserts,
      forget,
      stateKeys: forget.flatMap((key) => this.#stateKeys(key)),
    });
    if (result !== 'applied') {
      log.debug({ root, result }, 'discovery result not written (leadership or version changed); next round');
      return false;
    }
    for (const [key, entry] of upserts) entries.set(key, entry);
    for (const key of forget) entries.delete(key);
    return pollingChanged;
  }

  #stateKeys(key: string): string[] {
    const { keys } = this.#o;
    return [keys.checkpoint(key), keys.seen(key), keys.seenDigests(key), keys.status(key)];
  }

  #gauge(entries: ReadonlyMap<string, DiscoveredEntry>): void {
    const counts: Record<EntryState, number> = { active: 0, missing: 0, gone: 0 };
    for (const entry of entries.values()) counts[entryState(entry)]++;
    for (const [state, n] of Object.entries(counts)) this.#o.metrics.discoveredScopes.set({ state }, n);
  }
}
