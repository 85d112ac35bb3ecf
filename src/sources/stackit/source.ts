import { z } from 'zod';
import { sha256Hex } from '../../pipeline/envelope.ts';
import { ProviderError } from '../errors.ts';
import type {
  Checkpoint,
  Page,
  PollScope,
  ProviderInstance,
  PullContext,
  Source,
  SourceDeps,
} from '../source.ts';
import { AuditLogClient } from './client.ts';
import {
  MAX_WINDOW_MS,
  RETENTION_MS,
  type StackitProviderSettings,
  type StackitScopeSettings,
} from './config.ts';
import {
  itemDefects,
  MalformedPageError,
  type ParsedPage,
  parsePage,
  type RawItem,
  toAuditEvent,
} from './page.ts';
import { planWindows, resumeFromMs, seenHorizonMs, type TimeWindow } from './windows.ts';

/** Kept between a window's start and the retention edge: a window planned now is still readable later. */
const RETENTION_MARGIN_MS = 10 * 60_000;
/**
 * An item that lacks an id or a time fails its poll, because a transient glitch must not ship a bogus
 * event. If the provider sends the same broken bytes this many polls in a row, the defect is real and the
 * item ships with derived values and anomalies, instead of stalling the scope forever.
 */
const STRIKES_BEFORE_ACCEPTING = 3;
const STRIKE_MEMORY = 1_000;

/** What a STACKIT checkpoint holds. Validated on read: it comes from Redis, a boundary like any other. */
const stateSchema = z.object({
  v: z.literal(1),
  /** End of the last window read to its last page. */
  hwm: z.number().optional(),
  /** Where the first poll started, until its first window completes. */
  origin: z.number().optional(),
});
type StackitState = z.infer<typeof stateSchema>;

export class StackitSource implements Source<StackitScopeSettings> {
  readonly #provider: ProviderInstance<StackitProviderSettings>;
  readonly #client: AuditLogClient;
  readonly #strikes = new Map<string, number>();

  constructor(provider: ProviderInstance<StackitProviderSettings>, deps: SourceDeps) {
    this.#provider = provider;
    this.#client = new AuditLogClient(provider.settings, {
      providerName: provider.name,
      instanceId: deps.instanceId,
      onRequest: deps.onRequest,
    });
    if (provider.settings.tls.insecureSkipVerify) {
      deps.log.warn(
        `provider "${provider.name}": TLS certificate verification is OFF (tls.insecureSkipVerify)`,
      );
    }
  }

  async *pull(
    scope: PollScope<StackitScopeSettings>,
    checkpoint: Checkpoint | undefined,
    ctx: PullContext,
  ): AsyncIterable<Page> {
    const settings = this.#provider.settings;
    const overlapMs = scope.settings.overlap ?? settings.overlap;
    const state = readState(checkpoint, scope.key);
    const plan = planWindows({
      nowMs: ctx.now(),
      hwmMs: state.hwm,
      originMs: state.origin,
      overlapMs,
      settleLagMs: scope.settings.settleLag ?? settings.settleLag,
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
    const origin = hwm === undefined ? (state.origin ?? first.startMs) : undefined;
    for (const window of plan.windows) {
      let cursor: string | undefined;
      const cursorsSeen = new Set<string>();
      for (let pageNo = 1; ; pageNo++) {
        ctx.signal.throwIfAborted();
        const where = `stackit ${scope.ref.kind} ${scope.ref.id}, window ${describe(window)}, page ${pageNo}`;
        const body = await this.#client.fetchPage(scope.ref, window, cursor, ctx.signal, ctx.log);
        const page = this.#parse(body, where);
        const events = page.items.map((item) => this.#toEvent(item, scope, window, where, ctx));

        const next = page.cursor;
        if (next !== undefined) this.#checkProgress(next, cursor, cursorsSeen, pageNo, where);
        if (next === undefined) hwm = window.endMs;
        const nextState: StackitState = hwm === undefined ? { v: 1, origin } : { v: 1, hwm };
        yield {
          events,
          checkpoint: { state: nextState, ...(hwm === undefined ? {} : { watermarkMs: hwm }) },
          forgetSeenBeforeMs: seenHorizonMs(resumeFromMs(hwm, origin, overlapMs) ?? first.startMs),
        };
        if (next === undefined) break;
        cursor = next;
      }
    }
  }

  #parse(body: string, where: string): ParsedPage {
    try {
      return parsePage(body);
    } catch (error) {
      if (!(error instanceof MalformedPageError)) throw error;
      throw new ProviderError({
        provider: 'stackit',
        reason: error.kind,
        retryable: false,
        message: `${where}: ${error.message}; nothing of this page was committed, the next poll reads it again`,
      });
    }
  }

  #toEvent(
    item: RawItem,
    scope: PollScope<StackitScopeSettings>,
    window: TimeWindow,
    where: string,
    ctx: PullContext,
  ) {
    const defects = itemDefects(item.value);
    const fallbacks = { id: `sha256:${sha256Hex(item.raw)}`, timeMs: window.startMs };
    if (defects.length > 0) {
      const summary = defects.map(
        (d) => `items[${item.index}].${d.field === 'item' ? '' : d.field}: ${d.message}`,
      );
      const strikes = this.#strike(fallbacks.id);
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

  /** Counts consecutive polls that met the same broken item; memory is bounded by dropping the oldest. */
  #strike(key: string): number {
    const strikes = (this.#strikes.get(key) ?? 0) + 1;
    this.#strikes.delete(key);
    this.#strikes.set(key, strikes);
    if (this.#strikes.size > STRIKE_MEMORY) {
      const oldest = this.#strikes.keys().next().value;
      if (oldest !== undefined) this.#strikes.delete(oldest);
    }
    return strikes;
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
    await this.#client.close();
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
