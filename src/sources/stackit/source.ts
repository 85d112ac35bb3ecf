import type { Logger } from 'pino';
import { z } from 'zod';
import type { Lane } from '../../http/rate-budget.ts';
import type { AuditEvent, ScopeRef } from '../../pipeline/envelope.ts';
import { ProviderError } from '../errors.ts';
import { elementSha256, parsePageForPoll, structureDefect } from '../json-page.ts';
import type {
  Checkpoint,
  DiscoveredScope,
  DiscoverySupport,
  HistorySupport,
  Page,
  PollScope,
  ProviderInstance,
  PullContext,
  Source,
  SourceDeps,
  TimeRange,
} from '../source.ts';
import { StrikeCounter } from '../strikes.ts';
import { StackitApi } from './api.ts';
import { createTokenSource } from './auth/create.ts';
import type { ServiceAccountKey } from './auth/service-account-key.ts';
import type { AccessTokenSource } from './auth/token-source.ts';
import { AuditLogClient } from './client.ts';
import {
  MAX_WINDOW_MS,
  RETENTION_MS,
  type StackitProviderSettings,
  type StackitScopeKind,
  type StackitScopeSettings,
} from './config.ts';
import { walkHierarchy } from './discovery.ts';
import { itemDefects, parsePage, type RawItem, toAuditEvent } from './page.ts';
import { ResourceManagerClient } from './resource-manager.ts';
import {
  beforeWindow,
  planRange,
  planWindows,
  resumeFromMs,
  seenHorizonMs,
  type TimeWindow,
} from './windows.ts';

/** Kept between a window's start and the retention edge: a window planned now is still readable later. */
const RETENTION_MARGIN_MS = 10 * 60_000;
/**
 * An item that lacks an id or a time fails its poll, because a transient glitch must not ship a bogus
 * event. If the provider sends the same broken bytes this many polls in a row, the defect is real and the
 * item ships with derived values and anomalies, instead of stalling the scope forever.
 */
const STRIKES_BEFORE_ACCEPTING = 3;

/** What a STACKIT checkpoint holds. Validated on read: it comes from Redis, a boundary like any other. */
const stateSchema = z.object({
  v: z.literal(1),
  /** End of the last window read to its last page. */
  hwm: z.number().optional(),
  /** Where the first poll started, until its first window completes. */
  origin: z.number().optional(),
  /**
   * The live lane never reads or ships an event before this; earlier history belongs to backfills.
   * Set on the first poll, never moved. Checkpoints from before floors existed have none.
   */
  floor: z.number().optional(),
  /** Where the lookback asked history to start, when that lies before the floor: owed to a backfill. */
  owed: z.number().optional(),
});
type StackitState = z.infer<typeof stateSchema>;

/** A backfill's checkpoint: which range it reads, and how far it has read it completely. */
const rangeStateSchema = z.object({
  v: z.literal(1),
  range: z.tuple([z.number(), z.number()]),
  hwm: z.number(),
});
type RangeState = z.infer<typeof rangeStateSchema>;

export class StackitSource implements Source<StackitScopeSettings> {
  readonly #provider: ProviderInstance<StackitProviderSettings>;
  readonly #auth: AccessTokenSource;
  readonly #client: AuditLogClient;
  readonly #rm: ResourceManagerClient;
  readonly #strikes = new StrikeCounter();
  readonly history: HistorySupport<StackitScopeSettings>;
  readonly discovery: DiscoverySupport<StackitScopeSettings>;

  constructor(provider: ProviderInstance<StackitProviderSettings>, deps: SourceDeps) {
    this.#provider = provider;
    const settings = provider.settings;
    this.#auth = createTokenSource(settings.auth, {
      providerName: provider.name,
      instanceId: deps.instanceId,
      timeoutMs: settings.requestTimeout,
      tls: settings.tls,
      log: deps.log,
      onRequest: deps.onRequest,
    });
    const api = (name: string, baseUrl: string, limit: StackitProviderSettings['rateLimit']) =>
      new StackitApi({
        providerName: provider.name,
        api: name,
        baseUrl,
        instanceId: deps.instanceId,
        timeoutMs: settings.requestTimeout,
        tls: settings.tls,
        auth: this.#auth,
        // Per credential and API: what STACKIT's limit counts against is unconfirmed; a credential is
        // the narrowest thing every replica can agree on.
        bucket: deps.rateBudgets?.bucket(`stackit:${this.#auth.credentialId}:${name}`, limit),
        retry: settings.retry,
        onRequest: deps.onRequest,
      });
    this.#client = new AuditLogClient(api('auditlog', settings.auditLogUrl, settings.rateLimit));
    this.#rm = new ResourceManagerClient(
      api('resource-manager', settings.resourceManagerUrl, settings.resourceManagerRateLimit),
    );
    if (settings.tls.insecureSkipVerify) {
      deps.log.warn(
        `provider "${provider.name}": TLS certificate verification is OFF (tls.insecureSkipVerify)`,
      );
    }
    if (settings.auth.kind === 'token') {
      deps.log.warn(
        `provider "${provider.name}" authenticates with a static token; STACKIT deprecated long-lived tokens, use a service-account key (auth.serviceAccountKeyFile)`,
      );
    } else if (settings.auth.kind === 'key') {
      warnAboutKey(settings.auth.key, provider.name, deps);
    }
    this.history = {
      liveFloorMs: (scope, checkpoint) => liveFloor(readState(checkpoint, scope.key)),
      owedHistory: (scope, checkpoint) => {
        const state = readState(checkpoint, scope.key);
        const floor = liveFloor(state);
        return state.owed !== undefined && floor !== undefined && state.owed < floor
          ? { fromMs: state.owed, toMs: floor }
          : undefined;
      },
      retainedFromMs: (nowMs) => nowMs - RETENTION_MS + RETENTION_MARGIN_MS,
      pullRange: (scope, range, checkpoint, ctx) => this.#pullRange(scope, range, checkpoint, ctx),
    };
    this.discovery = {
      plan: (scope) => {
        const discover = scope.settings.discover;
        return discover === undefined
          ? undefined
          : {
              intervalMs: discover.intervalMs,
              gracePeriodMs: discover.gracePeriodMs,
              forgetAfterMs: discover.forgetAfterMs,
            };
      },
      discover: (scope, ctx) => this.#discover(scope, ctx),
      childSettings: (root, ref) => ({
        kind: ref.kind as StackitScopeKind,
        id: ref.id,
        overlap: root.overlap,
        settleLag: root.settleLag,
        lookback: root.lookback,
      }),
    };
  }

  async *pull(
    scope: PollScope<StackitScopeSettings>,
    checkpoint: Checkpoint | undefined,
    ctx: PullContext,
  ): AsyncIterable<Page> {
    const settings = this.#provider.settings;
    const overlapMs = scope.settings.overlap ?? settings.overlap;
    const settleLagMs = scope.settings.settleLag ?? settings.settleLag;
    const state = readState(checkpoint, scope.key);
    const nowMs = ctx.now();
    let { origin, owed } = state;
    let floor = liveFloor(state);
    if (state.hwm === undefined && origin === undefined) {
      // The scope's first poll: the live lane reads at most one window of history; whatever more the
      // lookback asks for is owed to a backfill, which runs in its own lane (docs/stackit.md).
      const wantedMs = Math.max(
        nowMs - (scope.settings.lookback ?? settings.lookback),
        nowMs - RETENTION_MS + RETENTION_MARGIN_MS,
      );
      origin = Math.max(wantedMs, nowMs - settleLagMs - MAX_WINDOW_MS);
      floor = origin;
      owed = wantedMs < origin ? wantedMs : undefined;
    }
    const plan = planWindows({
      nowMs,
      hwmMs: state.hwm,
      originMs: origin,
      floorMs: floor,
      overlapMs,
      settleLagMs,
      lookbackMs: scope.settings.lookback ?? settings.lookback,
      retentionMs: RETENTION_MS,
      retentionMarginMs: RETENTION_MARGIN_MS,
      maxWindowMs: MAX_WINDOW_MS,
    });
    if (plan.expiredMs > 0) {
      ctx.log.error(
        { scope: scope.key, expiredMs: plan.expiredMs, hwm: new Date(state.hwm ?? 0).toISOString() },
        `stackit ${scope.ref.kind} ${scope.ref.id}: not polled for longer than the 90-day retention; ` +
          `events from the last ${Math.round(plan.expiredMs / 60_000)} minutes before the retention edge are gone`,
      );
    }
    const first = plan.windows[0];
    if (first === undefined) return;

    let hwm = state.hwm;
    if (hwm === undefined) origin ??= first.startMs;
    const fixed = { floor, owed };
    for (const window of plan.windows) {
      for await (const page of this.#readWindow(scope, window, 'live', ctx)) {
        if (page.complete) hwm = window.endMs;
        const nextState: StackitState = compact(
          hwm === undefined ? { v: 1, origin, ...fixed } : { v: 1, hwm, ...fixed },
        );
        yield {
          events:
            floor === undefined
              ? page.events
              : this.#owned(page.events, floor, Number.POSITIVE_INFINITY, ctx),
          checkpoint: { state: nextState, ...(hwm === undefined ? {} : { watermarkMs: hwm }) },
          forgetSeenBeforeMs: seenHorizonMs(resumeFromMs(hwm, origin, overlapMs) ?? first.startMs),
          ...(page.outsideRange > 0 ? { outsideRange: page.outsideRange } : {}),
        };
      }
    }
  }

  /** A backfill: `range` in 24 h windows, oldest first, resuming where its checkpoint stopped. */
  async *#pullRange(
    scope: PollScope<StackitScopeSettings>,
    range: TimeRange,
    checkpoint: Checkpoint | undefined,
    ctx: PullContext,
  ): AsyncIterable<Page> {
    const stored = readRangeState(checkpoint, scope.key);
    const sameRange =
      stored !== undefined && stored.range[0] === range.fromMs && stored.range[1] === range.toMs;
    let hwm = sameRange ? stored.hwm : range.fromMs;
    const plan = planRange({
      fromMs: range.fromMs,
      toMs: range.toMs,
      doneUntilMs: hwm,
      retainedFromMs: this.history.retainedFromMs(ctx.now()),
      maxWindowMs: MAX_WINDOW_MS,
    });
    const state = (): RangeState => ({ v: 1, range: [range.fromMs, range.toMs], hwm });
    if (plan.expired !== undefined) {
      ctx.log.error(
        { scope: scope.key, expiredFrom: describe(plan.expired) },
        `stackit ${scope.ref.kind} ${scope.ref.id}: backfill history ${describe(plan.expired)} left the 90-day retention before it was read; it is gone`,
      );
      hwm = plan.expired.endMs;
    }
    if (plan.windows.length === 0) {
      // Nothing left to read (or all of it expired): one empty page records the range as done.
      hwm = range.toMs;
      yield { events: [], checkpoint: { state: state(), watermarkMs: hwm }, forgetSeenBeforeMs: 0 };
      return;
    }
    // History is read only once late arrivals have had as long to show up as the live lane gives them
    // (overlap + settleLag): the live lane never reads before its floor, so a window just below it that
    // was read too early would miss them for good.
    const settings = this.#provider.settings;
    const settledUntilMs =
      ctx.now() -
      (scope.settings.overlap ?? settings.overlap) -
      (scope.settings.settleLag ?? settings.settleLag);
    for (const window of plan.windows) {
      if (window.endMs > settledUntilMs) {
        ctx.log.debug(
          {
            window: describe(window),
            readableAt: new Date(window.endMs + ctx.now() - settledUntilMs).toISOString(),
          },
          'backfill window not settled yet (closer to now than overlap + settleLag); read later',
        );
        return;
      }
      for await (const page of this.#readWindow(scope, window, 'backfill', ctx)) {
        if (page.complete) hwm = window.endMs;
        yield {
          events: this.#owned(page.events, range.fromMs, range.toMs, ctx),
          checkpoint: { state: state(), watermarkMs: hwm },
          // Windows of a backfill do not overlap: ids before the current window are never read again.
          forgetSeenBeforeMs: seenHorizonMs(window.startMs),
          ...(page.outsideRange > 0 ? { outsideRange: page.outsideRange } : {}),
        };
      }
    }
  }

  /**
   * The pages of one window, following cursors until none is left. `complete` marks the last page:
   * only then has the whole window been read.
   *
   * An item whose eventTimeStamp lies before the window (beyond the bounds' slack) is left out and
   * reported, not committed. Its id may have left the seen-set long ago, so committing it would ship it
   * again on every poll that returns it (issue 9 §6). Nothing legitimate is lost: the API filters on
   * eventTimeStamp, so the event belongs to the window that covers its time, which this lane (or a
   * backfill) has read already: it was shipped then, or it became visible only after its window was
   * read for the last time, i.e. later than `overlap`, which even a correct API would not have returned
   * to us; the warning names its id and time, so such a case is visible and `overlap` can be raised.
   * Items after the window are kept: their ids outlive the seen horizon, so they cannot come back as
   * new, and the window that covers them may not have been read yet.
   */
  async *#readWindow(
    scope: PollScope<StackitScopeSettings>,
    window: TimeWindow,
    lane: Lane,
    ctx: PullContext,
  ): AsyncIterable<{ events: AuditEvent[]; complete: boolean; outsideRange: number }> {
    let cursor: string | undefined;
    const cursorsSeen = new Set<string>();
    for (let pageNo = 1; ; pageNo++) {
      ctx.signal.throwIfAborted();
      const where = `stackit ${scope.ref.kind} ${scope.ref.id}, window ${describe(window)}, page ${pageNo}`;
      const body = await this.#client.fetchPage(scope.ref, window, cursor, lane, ctx.signal, ctx.log);
      const page = parsePageForPoll('stackit', parsePage, body, where);
      const mapped = page.items.map((item) => this.#toEvent(item, scope, window, where, ctx));
      // Only events with their own eventTimeStamp: a derived time says nothing about the filter.
      const outside = mapped.filter(
        (event, i) =>
          !hasDefect(page.items[i] as RawItem, 'eventTimeStamp') && beforeWindow(window, event.timeMs),
      );
      const events = outside.length === 0 ? mapped : mapped.filter((event) => !outside.includes(event));
      if (outside.length > 0) this.#reportOutside(outside, scope, where, ctx);
      const next = page.cursor;
      if (next !== undefined) this.#checkProgress(next, cursor, cursorsSeen, pageNo, where);
      yield { events, complete: next === undefined, outsideRange: outside.length };
      if (next === undefined) return;
      cursor = next;
    }
  }

  #reportOutside(
    outside: readonly AuditEvent[],
    scope: PollScope<StackitScopeSettings>,
    where: string,
    ctx: PullContext,
  ): void {
    ctx.log.warn(
      {
        scope: scope.key,
        provider: this.#provider.name,
        events: outside.slice(0, 20).map((event) => ({ id: event.id, time: event.time })),
        count: outside.length,
      },
      `${where}: the API returned ${outside.length} event(s) dated before the window it was asked for; ` +
        'not committed (the window covering their time owns them, and was read already). An event shipped ' +
        'nowhere before arrived later than overlap: raise overlap',
    );
  }

  /**
   * Events of `[fromMs, toMs)` only: the other lane owns the rest. The API is asked for exactly this
   * range, so this only matters if it rounds or includes its bounds; then both lanes see the event and
   * exactly one ships it.
   */
  #owned(events: AuditEvent[], fromMs: number, toMs: number, ctx: PullContext): AuditEvent[] {
    const owned = events.filter((event) => event.timeMs >= fromMs && event.timeMs < toMs);
    if (owned.length < events.length) {
      ctx.log.debug(
        { dropped: events.length - owned.length, fromMs, toMs },
        'events outside this lane’s range left to the lane that owns them',
      );
    }
    return owned;
  }

  async #discover(
    scope: PollScope<StackitScopeSettings>,
    ctx: { readonly signal: AbortSignal; readonly log: Logger },
  ): Promise<DiscoveredScope[]> {
    const discover = scope.settings.discover;
    if (discover === undefined) return [];
    const found = await walkHierarchy(this.#rm, scope.ref, discover, ctx.signal, ctx.log);
    return found.map((container) => ({
      ref: { kind: container.kind, id: container.id } satisfies ScopeRef,
      name: container.name,
    }));
  }

  #toEvent(
    item: RawItem,
    scope: PollScope<StackitScopeSettings>,
    window: TimeWindow,
    where: string,
    ctx: PullContext,
  ) {
    const structure = structureDefect(item);
    const defects = [
      ...(structure === undefined ? [] : [{ field: 'item' as const, message: structure }]),
      ...itemDefects(item.value),
    ];
    const fallbacks = { id: `sha256:${elementSha256(item)}`, timeMs: window.startMs };
    if (defects.length > 0) {
      const summary = defects.map(
        (d) => `items[${item.index}].${d.field === 'item' ? '' : d.field}: ${d.message}`,
      );
      const strikes = this.#strikes.strike(fallbacks.id);
      if (strikes < STRIKES_BEFORE_ACCEPTING) {
        throw new ProviderError({
          provider: 'stackit',
          reason: 'invalid_response',
          retryable: false,
          message:
            `${where}: ${summary.join('; ')}; nothing of this page was committed and the next poll reads it again ` +
            `(strike ${strikes} of ${STRIKES_BEFORE_ACCEPTING}: if the provider keeps sending it, it ships with anomalies)`,
        });
      }
      ctx.log.warn(
        { scope: scope.key, eventId: fallbacks.id, defects: summary },
        `${where}: shipping an event the provider keeps sending malformed, with its defects recorded as anomalies`,
      );
    }
    return toAuditEvent(item, scope.ref, fallbacks);
  }

  /** A provider that hands out a cursor it already gave, or pages forever, must not spin a poll forever. */
  #checkProgress(
    next: string,
    current: string | undefined,
    seen: Set<string>,
    pageNo: number,
    where: string,
  ): void {
    const limit = this.#provider.settings.maxPagesPerWindow;
    if (next === current || seen.has(next) || pageNo >= limit) {
      throw new ProviderError({
        provider: 'stackit',
        reason: 'pagination_loop',
        retryable: false,
        message:
          pageNo >= limit
            ? `${where}: still paging after ${limit} pages (maxPagesPerWindow); stopped, nothing past the last commit is lost`
            : `${where}: the API returned a cursor it had already returned (pagination loop); stopped, nothing past the last commit is lost`,
      });
    }
    seen.add(next);
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.#client.close(), this.#rm.close(), this.#auth.close()]);
  }
}

/** The live lane's floor: set explicitly, or (checkpoints in their first window) the origin. */
function liveFloor(state: StackitState): number | undefined {
  return state.floor ?? (state.hwm === undefined ? state.origin : undefined);
}

function compact(state: StackitState): StackitState {
  return Object.fromEntries(Object.entries(state).filter(([, v]) => v !== undefined)) as StackitState;
}

function readRangeState(checkpoint: Checkpoint | undefined, scopeKey: string): RangeState | undefined {
  if (checkpoint === undefined) return undefined;
  const parsed = rangeStateSchema.safeParse(checkpoint.state);
  if (!parsed.success) {
    throw new Error(
      `backfill checkpoint of ${scopeKey} is not one this version understands (${JSON.stringify(checkpoint.state)}); ` +
        `reset it with "auditlog-shipper state reset ${scopeKey}"`,
    );
  }
  return parsed.data;
}

/** Operators hear about a key that will stop working before it does. */
function warnAboutKey(key: ServiceAccountKey, provider: string, deps: SourceDeps): void {
  if (key.active === false) {
    deps.log.warn(
      `provider "${provider}": service-account key ${key.kid} is marked inactive; the token endpoint will refuse it`,
    );
  }
  const until = key.validUntil === undefined ? Number.NaN : Date.parse(key.validUntil);
  if (Number.isFinite(until)) {
    const days = (until - Date.now()) / 86_400_000;
    if (days < 14) {
      deps.log.warn(
        { kid: key.kid, validUntil: key.validUntil },
        days < 0
          ? `provider "${provider}": service-account key ${key.kid} expired at ${key.validUntil}; create a new key`
          : `provider "${provider}": service-account key ${key.kid} expires at ${key.validUntil}; rotate it`,
      );
    }
  }
}

function readState(checkpoint: Checkpoint | undefined, scopeKey: string): StackitState {
  if (checkpoint === undefined) return { v: 1 };
  const parsed = stateSchema.safeParse(checkpoint.state);
  if (!parsed.success) {
    throw new Error(
      `checkpoint of ${scopeKey} is not a STACKIT checkpoint this version understands (${JSON.stringify(checkpoint.state)}); ` +
        `inspect it with "auditlog-shipper state show ${scopeKey}", or reset it with "state reset"`,
    );
  }
  return parsed.data;
}

function describe(window: TimeWindow): string {
  return `[${new Date(window.startMs).toISOString()}, ${new Date(window.endMs).toISOString()})`;
}

/** The item lacks a usable `field` (its envelope value was derived). */
function hasDefect(item: RawItem, field: 'eventTimeStamp'): boolean {
  return itemDefects(item.value).some((d) => d.field === field);
}
