/**
 * What a cloudscale checkpoint holds and the decisions that follow from it: where a poll starts, where
 * it restarts when the stored cursor is lost or refused, how long the seen-set must remember ids, and
 * whether data expired. Pure functions; the source does the I/O.
 *
 * The cursor URL (`next` mid-chain, `poll_more` at the end) is the resume point: the API orders by
 * primary key and never lets a cursor pass an entry that commits later, so timestamps are not. The
 * rest is for recovery: the newest timestamp delivered (restart there minus the overlap), where the
 * first read started, and the start of a time-based read that has not caught up yet (until it does,
 * it may return anything after that instant again, so the seen-set keeps all of it).
 */
import { z } from 'zod';

/** Kept between a restart point and the retention edge, so it is still readable when the request lands. */
export const RETENTION_MARGIN_MS = 10 * 60_000;
/** Ids are kept this much longer than strictly needed: bounds rounding at the API's `start` filter. */
const SEEN_SLACK_MS = 60_000;

export const stateSchema = z.object({
  v: z.literal(1),
  /** Where the next poll resumes: the last `next` (mid-chain) or `poll_more` (chain end) URL. */
  url: z.string(),
  /** When `url` was handed out (epoch ms, shipper clock): its age shows expired data. */
  urlAtMs: z.number(),
  /** Where the very first read started (epoch ms); the restart point while nothing was delivered. */
  originMs: z.number(),
  /** Newest entry time delivered (epoch ms), capped at the clock. */
  hwmMs: z.number().optional(),
  /** Start of a time-based read (first poll or recovery) that has not reached the end of the log yet. */
  sinceMs: z.number().optional(),
  /** Checkpoints of earlier versions: content digests of the last 100 entries (event-id.ts reads them). */
  recent: z.array(z.string()).optional(),
  /** Content digests of the entries in the seen window, per event time, for numbering identical ones. */
  twins: z.record(z.string(), z.string()).optional(),
  /**
   * Fingerprint of the last page that returned entries: a stored cursor whose first page repeats it
   * exactly does not move (a pagination loop across polls).
   */
  lastPage: z.string().optional(),
});

export type CloudscaleState = z.output<typeof stateSchema>;

/** The stored state, or undefined on a scope's first poll; an unreadable one is an error to act on. */
export function readState(checkpoint: { readonly state: unknown } | undefined, scopeKey: string) {
  if (checkpoint === undefined) return undefined;
  const parsed = stateSchema.safeParse(checkpoint.state);
  if (!parsed.success) {
    throw new Error(
      `checkpoint of ${scopeKey} is not a cloudscale checkpoint this version understands; inspect it with ` +
        `"auditlog-shipper state show ${scopeKey}", or reset it with "state reset" (the next poll then ` +
        'restarts near the newest event it delivered and drops what it already has)',
    );
  }
  return parsed.data;
}

export interface TimeStart {
  readonly startMs: number;
  /** Time before the retention edge that could not be read any more (0: nothing lost). */
  readonly expiredMs: number;
}

export interface Clock {
  readonly nowMs: number;
  readonly retentionMs: number;
}

/**
 * A scope without a checkpoint starts `lookback` ago, or earlier when its seen-set shows a forgotten
 * checkpoint had delivered less far than that (then it restarts at that point minus the overlap).
 */
export function firstStart(
  clock: Clock,
  lookbackMs: number,
  overlapMs: number,
  newestSeenMs: number | undefined,
): TimeStart {
  const fromLookback = clock.nowMs - lookbackMs;
  const wanted = newestSeenMs === undefined ? fromLookback : Math.min(fromLookback, newestSeenMs - overlapMs);
  return clamp(clock, wanted, newestSeenMs);
}

/** After the stored cursor was refused: the newest delivered time minus the overlap. */
export function recoveryStart(
  clock: Clock,
  state: Pick<CloudscaleState, 'hwmMs' | 'originMs'>,
  overlapMs: number,
): TimeStart {
  const delivered = state.hwmMs ?? state.originMs;
  return clamp(clock, delivered - overlapMs, delivered);
}

function clamp(clock: Clock, wantedMs: number, deliveredMs: number | undefined): TimeStart {
  const earliest = clock.nowMs - clock.retentionMs + RETENTION_MARGIN_MS;
  const startMs = Math.max(wantedMs, earliest);
  const expiredMs = deliveredMs !== undefined && deliveredMs < earliest ? earliest - deliveredMs : 0;
  return { startMs, expiredMs };
}

/**
 * How long ids must stay in the seen-set: anything a later read can return again. That is everything
 * after the start of a time-based read still catching up, and everything a recovery would re-read
 * (newest delivered time minus the overlap).
 */
export function seenHorizonMs(
  state: Pick<CloudscaleState, 'hwmMs' | 'originMs' | 'sinceMs'>,
  overlapMs: number,
): number {
  const recovery = (state.hwmMs ?? state.originMs) - overlapMs;
  return Math.min(recovery, state.sinceMs ?? recovery) - SEEN_SLACK_MS;
}

/**
 * Entries older than the retention are deleted by cloudscale, so a cursor stored longer ago than that
 * resumes after a hole: the part between when it was stored and the retention edge. 0 when none.
 */
export function expiredSinceCursorMs(clock: Clock, state: CloudscaleState): number {
  const earliest = clock.nowMs - clock.retentionMs;
  return Math.max(0, earliest - state.urlAtMs);
}
