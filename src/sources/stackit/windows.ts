/**
 * Which time windows one STACKIT poll reads. The API filters on `eventTimeStamp`, takes at most 24 h per
 * query and keeps 90 days, and entries become visible some time after their event time. So each poll
 * re-reads from `hwm − overlap` (late arrivals), stops at `now − settleLag` (entries still arriving), and
 * walks the span in ≤ 24 h windows oldest first, so the high-water mark only ever moves over fully read
 * time.
 */

export interface WindowPlanInput {
  readonly nowMs: number;
  /** End of the last fully read window; undefined until a scope's first window is read completely. */
  readonly hwmMs: number | undefined;
  /**
   * Where the scope's first poll started (now − lookback back then), kept until the first window
   * completes, so a restart in the middle of it resumes there instead of at a later now − lookback.
   */
  readonly originMs: number | undefined;
  /** The live lane never reads before this (earlier history belongs to backfills); undefined: no floor. */
  readonly floorMs?: number | undefined;
  readonly overlapMs: number;
  readonly settleLagMs: number;
  readonly lookbackMs: number;
  readonly retentionMs: number;
  /**
   * Kept between the window start and the retention edge, so a window planned now is still inside
   * retention when its last page is fetched minutes later.
   */
  readonly retentionMarginMs: number;
  readonly maxWindowMs: number;
}

export interface TimeWindow {
  readonly startMs: number;
  readonly endMs: number;
}

export interface WindowPlan {
  readonly windows: readonly TimeWindow[];
  /**
   * Time between the high-water mark and the retention edge that can no longer be read: the scope was
   * not polled for longer than the provider keeps logs. Zero when nothing was lost.
   */
  readonly expiredMs: number;
}

export function planWindows(input: WindowPlanInput): WindowPlan {
  const endMs = input.nowMs - input.settleLagMs;
  const earliestMs = input.nowMs - input.retentionMs + input.retentionMarginMs;
  const wantedStartMs =
    resumeFromMs(input.hwmMs, input.originMs, input.overlapMs) ?? input.nowMs - input.lookbackMs;
  const startMs = Math.max(wantedStartMs, earliestMs, input.floorMs ?? Number.NEGATIVE_INFINITY);
  const expiredMs = input.hwmMs !== undefined && input.hwmMs < earliestMs ? earliestMs - input.hwmMs : 0;

  const windows: TimeWindow[] = [];
  for (let from = startMs; from < endMs; from += input.maxWindowMs) {
    windows.push({ startMs: from, endMs: Math.min(from + input.maxWindowMs, endMs) });
  }
  return { windows, expiredMs };
}

/** Where the next poll starts reading, from what the checkpoint holds; undefined on a fresh scope. */
export function resumeFromMs(
  hwmMs: number | undefined,
  originMs: number | undefined,
  overlapMs: number,
): number | undefined {
  if (hwmMs !== undefined) return hwmMs - overlapMs;
  return originMs;
}

/** Slack for providers whose range bounds are inclusive or rounded. */
export const BOUNDS_SLACK_MS = 60_000;

/**
 * Ids of events older than this can leave the seen-set: no later poll asks for that time again. A
 * minute of slack covers providers whose range bounds are inclusive or rounded.
 */
export function seenHorizonMs(nextStartMs: number): number {
  return nextStartMs - BOUNDS_SLACK_MS;
}

/**
 * An event the API returned for `window` although its event time lies before it (beyond the slack).
 * Such an event is not committed (see StackitSource: the window that covers its time owns it), because
 * its id may already have left the seen-set, and committing it would ship it again on every poll.
 */
export function beforeWindow(window: TimeWindow, eventTimeMs: number): boolean {
  return eventTimeMs < window.startMs - BOUNDS_SLACK_MS;
}

export interface RangePlanInput {
  /** The range to read, `[fromMs, toMs)`. */
  readonly fromMs: number;
  readonly toMs: number;
  /** End of the part of the range already read completely (a resumed backfill); default fromMs. */
  readonly doneUntilMs?: number | undefined;
  /** The oldest time the provider still serves. */
  readonly retainedFromMs: number;
  readonly maxWindowMs: number;
}

export interface RangePlan {
  readonly windows: readonly TimeWindow[];
  /** Part of the range that fell out of retention before it was read; zero when nothing was lost. */
  readonly expired: TimeWindow | undefined;
}

/**
 * The windows a backfill still has to read: from where it stopped to the end of its range in ≤ 24 h
 * windows, oldest first. History that left retention meanwhile cannot be read any more; it is reported
 * instead of asked for (the API would refuse the request).
 */
export function planRange(input: RangePlanInput): RangePlan {
  const resumeMs = Math.max(input.fromMs, input.doneUntilMs ?? input.fromMs);
  const startMs = Math.min(Math.max(resumeMs, input.retainedFromMs), input.toMs);
  const expired = startMs > resumeMs ? { startMs: resumeMs, endMs: startMs } : undefined;
  const windows: TimeWindow[] = [];
  for (let from = startMs; from < input.toMs; from += input.maxWindowMs) {
    windows.push({ startMs: from, endMs: Math.min(from + input.maxWindowMs, input.toMs) });
  }
  return { windows, expired };
}
