/**
 * Rate and time left of a backfill being followed, from what the follower has seen since it started:
 * events committed per second, and the remaining share of the range at the pace the read share grew.
 * Nothing is promised before the first visible step forward.
 */
export interface RateEstimate {
  /** Events committed per second since following began; undefined until some were. */
  readonly eventsPerSecond: number | undefined;
  /** Time left at the pace so far; undefined until the read range moved. */
  readonly etaMs: number | undefined;
}

export class BackfillRate {
  #first: { atMs: number; fraction: number; committed: number } | undefined;

  update(atMs: number, fraction: number, committed: number): RateEstimate {
    this.#first ??= { atMs, fraction, committed };
    const elapsedS = (atMs - this.#first.atMs) / 1000;
    if (elapsedS <= 0) return { eventsPerSecond: undefined, etaMs: undefined };
    const events = committed - this.#first.committed;
    const moved = fraction - this.#first.fraction;
    return {
      eventsPerSecond: events > 0 ? events / elapsedS : undefined,
      etaMs: moved > 0 && fraction < 1 ? ((1 - fraction) / moved) * elapsedS * 1000 : undefined,
    };
  }
}

/** ` 120 events/s, about 4m left` (or less, when that is not known yet). */
export function describeRate(rate: RateEstimate, formatDuration: (ms: number) => string): string {
  const parts: string[] = [];
  if (rate.eventsPerSecond !== undefined)
    parts.push(`${rate.eventsPerSecond.toFixed(rate.eventsPerSecond < 10 ? 1 : 0)} events/s`);
  if (rate.etaMs !== undefined)
    parts.push(`about ${formatDuration(Math.max(1000, Math.round(rate.etaMs / 1000) * 1000))} left`);
  return parts.length === 0 ? '' : `  ${parts.join(', ')}`;
}

/**
 * Says once when a followed backfill has not moved for `quietMs`. "Moved" is anything the caller puts
 * in the progress key (events committed, not only whole days read); a run the shipper told to wait is
 * not stalled.
 */
export class StallWatch {
  readonly #quietMs: number;
  #key = '';
  #changedAtMs: number | undefined;
  #said = false;

  constructor(quietMs = 60_000) {
    this.#quietMs = quietMs;
  }

  /** True exactly once: the first time progress has been quiet for `quietMs` without a reason. */
  stalled(nowMs: number, progressKey: string, waiting: boolean): boolean {
    if (this.#changedAtMs === undefined || progressKey !== this.#key || waiting) {
      this.#key = progressKey;
      this.#changedAtMs = nowMs;
      return false;
    }
    if (this.#said || nowMs - this.#changedAtMs <= this.#quietMs) return false;
    this.#said = true;
    return true;
  }
}
