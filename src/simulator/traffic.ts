/**
 * Deterministic, lazy event traffic. Nothing is stored: the events of one scope in one minute bucket
 * are a pure function of (seed, scope, bucket), regenerated on demand and kept in a bounded LRU. A
 * 10,000-scope simulation with 90 days of history therefore costs memory only for the buckets that
 * were read recently.
 *
 * Provider-neutral: a provider module supplies `render` (the raw JSON of one event) and reads events in
 * `(time, id)` order through `scan`.
 */

import { hash128, mixWords, Rng, uuidFromWords, type Words } from './random.ts';
import { formatRfc3339Us } from './rfc3339.ts';

export const BUCKET_MS = 60_000;
const BUCKET_US = BUCKET_MS * 1000;

export interface ScopeRef {
  readonly kind: string;
  readonly id: string;
}

/**
 * When an event becomes visible after it happened. Common case: uniform in `[minMs, maxMs]`; with
 * probability `lateFraction` instead uniform in `[maxMs, lateMaxMs]` (a late arrival).
 */
export interface DelayOptions {
  readonly minMs: number;
  readonly maxMs: number;
  readonly lateFraction?: number | undefined;
  readonly lateMaxMs?: number | undefined;
}

/** A delay distribution with every field resolved. */
export interface ResolvedDelay {
  readonly minMs: number;
  readonly maxMs: number;
  readonly lateFraction: number;
  readonly lateMaxMs: number;
}

export const DEFAULT_DELAY: DelayOptions = { minMs: 1_000, maxMs: 8_000, lateFraction: 0, lateMaxMs: 8_000 };

/** One simulated scope, as the traffic model knows it. */
export interface TrafficScope {
  readonly ref: ScopeRef;
  /** `scopeKey(kind, id)` */
  readonly key: string;
  readonly eventsPerMinute: number;
  /** Hash of (seed, kind, id): the root of every stream of this scope. */
  readonly words: Words;
  /** Distinguishes re-added scopes in the cache. */
  readonly generation: number;
}

/**
 * One generated event. Its raw JSON is rendered on first use and kept, UTF-8 encoded, with the cached
 * bucket (pages are assembled from these bytes without re-encoding).
 */
export interface SimEvent {
  readonly scope: TrafficScope;
  readonly id: string;
  /** Event time in epoch µs (the sort and filter key). */
  readonly tUs: number;
  /** Event time in epoch ms, truncated (what `Date.parse(eventTimeText)` returns). */
  readonly eventTimeMs: number;
  readonly eventTimeText: string;
  readonly receivedTimeText: string;
  readonly delayMs: number;
  /** Provider clock (ms) from which queries return it. */
  readonly visibleAtMs: number;
  /** Seed of the event's payload stream. */
  readonly contentWords: Words;
  rawBytes: Buffer | undefined;
}

export type Render = (event: SimEvent) => string;

export interface ScanOptions {
  /** Inclusive lower bound on event time, epoch µs. */
  readonly fromUs: number;
  /** Exclusive upper bound on event time, epoch µs. */
  readonly toUs: number;
  readonly order?: 'asc' | 'desc' | undefined;
  /** Keyset position: only events strictly after it in scan order. */
  readonly after?: { readonly tUs: number; readonly id: string } | undefined;
  /** Only events with `visibleAtMs <= visibleBy` (provider clock, ms). */
  readonly visibleBy?: number | undefined;
}

export interface TrafficOptions {
  readonly seed: number;
  readonly delay?: DelayOptions | undefined;
  readonly render: Render;
  /** Events kept in the bucket LRU (default 50,000). */
  readonly cacheEvents?: number | undefined;
  /** Event-time bounds of all traffic, epoch ms: `[trafficStartMs, trafficEndMs)`. */
  readonly trafficStartMs?: number | undefined;
  readonly trafficEndMs?: number | undefined;
}

/** `${kind}:${id}` with the id lowercased (UUIDs compare case-insensitively). */
export function scopeKey(kind: string, id: string): string {
  return `${kind}:${id.toLowerCase()}`;
}

const EMPTY: readonly SimEvent[] = Object.freeze([]);

export class Traffic {
  readonly seed: number;
  readonly #render: Render;
  readonly #delay: ResolvedDelay;
  readonly #scopes = new Map<string, TrafficScope>();
  readonly #cache = new Map<string, readonly SimEvent[]>();
  readonly #cacheLimit: number;
  #cached = 0;
  #generation = 0;
  #startMs: number;
  #endMs: number;

  constructor(options: TrafficOptions) {
    this.seed = options.seed;
    this.#render = options.render;
    const delay = options.delay ?? DEFAULT_DELAY;
    const minMs = Math.max(0, delay.minMs);
    const maxMs = Math.max(minMs, delay.maxMs);
    const lateFraction = Math.min(1, Math.max(0, delay.lateFraction ?? 0));
    const lateMaxMs = Math.max(maxMs, delay.lateMaxMs ?? maxMs);
    this.#delay = { minMs, maxMs, lateFraction, lateMaxMs };
    this.#cacheLimit = Math.max(0, options.cacheEvents ?? 50_000);
    this.#startMs = options.trafficStartMs ?? Number.NEGATIVE_INFINITY;
    this.#endMs = options.trafficEndMs ?? Number.POSITIVE_INFINITY;
  }

  get delay(): ResolvedDelay {
    return this.#delay;
  }

  addScope(ref: ScopeRef, eventsPerMinute: number): TrafficScope {
    if (!(eventsPerMinute >= 0) || !Number.isFinite(eventsPerMinute)) {
      throw new Error(`eventsPerMinute must be a finite number >= 0, got ${eventsPerMinute}`);
    }
    const key = scopeKey(ref.kind, ref.id);
    const scope: TrafficScope = {
      ref: { kind: ref.kind, id: ref.id },
      key,
      eventsPerMinute,
      words: hash128(`${this.seed}|${ref.kind}|${ref.id.toLowerCase()}`),
      generation: ++this.#generation,
    };
    this.#scopes.set(key, scope);
    return scope;
  }

  removeScope(ref: ScopeRef): boolean {
    return this.#scopes.delete(scopeKey(ref.kind, ref.id));
  }

  scope(kind: string, id: string): TrafficScope | undefined {
    return this.#scopes.get(scopeKey(kind, id));
  }

  scopes(): TrafficScope[] {
    return [...this.#scopes.values()];
  }

  /** Event-time bounds of all traffic (epoch ms, half-open); ±Infinity when unbounded. */
  get window(): { startMs: number; endMs: number } {
    return { startMs: this.#startMs, endMs: this.#endMs };
  }

  /** Changes the traffic bounds; cached buckets stay valid because the bounds filter at read time. */
  setWindow(bounds: { startMs?: number | null | undefined; endMs?: number | null | undefined }): void {
    if (bounds.startMs !== undefined) this.#startMs = bounds.startMs ?? Number.NEGATIVE_INFINITY;
    if (bounds.endMs !== undefined) this.#endMs = bounds.endMs ?? Number.POSITIVE_INFINITY;
  }

  /** The event's raw JSON as UTF-8 bytes, rendered once per cached bucket. */
  rawBytes(event: SimEvent): Buffer {
    let bytes = event.rawBytes;
    if (bytes === undefined) {
      bytes = Buffer.from(this.#render(event), 'utf8');
      event.rawBytes = bytes;
    }
    return bytes;
  }

  /** The event's raw JSON text. */
  raw(event: SimEvent): string {
    return this.rawBytes(event).toString('utf8');
  }

  /**
   * Events of one scope in `[fromUs, toUs)` intersected with the traffic bounds, in `(tUs, id)` order
   * (or reversed), strictly after `after`, optionally only those visible by `visibleBy`. Work is
   * proportional to the buckets touched from the start position, never to the whole window.
   */
  *scan(scope: TrafficScope, options: ScanOptions): Generator<SimEvent, void, undefined> {
    let lo = Math.max(options.fromUs, this.#startMs * 1000);
    let hi = Math.min(options.toUs, this.#endMs * 1000);
    const visibleBy = options.visibleBy;
    if (visibleBy !== undefined) {
      // visibleAtMs >= eventTimeMs, so nothing at or after visibleBy + 1 ms can be visible.
      hi = Math.min(hi, (Math.floor(visibleBy) + 1) * 1000);
    }
    const after = options.after;
    const desc = options.order === 'desc';
    if (after && !desc) lo = Math.max(lo, after.tUs);
    if (after && desc) hi = Math.min(hi, after.tUs + 1);
    if (!(lo < hi)) return;
    const firstBucket = Math.floor(lo / BUCKET_US);
    const lastBucket = Math.floor((hi - 1) / BUCKET_US);
    if (!desc) {
      for (let b = firstBucket; b <= lastBucket; b++) {
        const events = this.bucket(scope, b);
        for (let i = lowerBound(events, lo); i < events.length; i++) {
          const e = events[i] as SimEvent;
          if (e.tUs >= hi) break;
          if (after && e.tUs === after.tUs && e.id <= after.id) continue;
          if (visibleBy !== undefined && e.visibleAtMs > visibleBy) continue;
          yield e;
        }
      }
    } else {
      for (let b = lastBucket; b >= firstBucket; b--) {
        const events = this.bucket(scope, b);
        for (let i = lowerBound(events, hi) - 1; i >= 0; i--) {
          const e = events[i] as SimEvent;
          if (e.tUs < lo) break;
          if (after && e.tUs === after.tUs && e.id >= after.id) continue;
          if (visibleBy !== undefined && e.visibleAtMs > visibleBy) continue;
          yield e;
        }
      }
    }
  }

  /** All events of a scope's minute bucket `b` (epoch ms / 60,000), sorted by `(tUs, id)`. */
  bucket(scope: TrafficScope, b: number): readonly SimEvent[] {
    const key = `${scope.generation}:${b}`;
    const hit = this.#cache.get(key);
    if (hit) {
      this.#cache.delete(key);
      this.#cache.set(key, hit);
      return hit;
    }
    const events = this.#generate(scope, b);
    if (events.length > 0 && this.#cacheLimit > 0) {
      this.#cache.set(key, events);
      this.#cached += events.length;
      while (this.#cached > this.#cacheLimit && this.#cache.size > 1) {
        const oldest = this.#cache.keys().next();
        if (oldest.done) break;
        this.#cached -= this.#cache.get(oldest.value)?.length ?? 0;
        this.#cache.delete(oldest.value);
      }
    }
    return events;
  }

  #generate(scope: TrafficScope, b: number): readonly SimEvent[] {
    const rng = new Rng(mixWords(scope.words, b));
    const n = rng.poisson(scope.eventsPerMinute);
    if (n === 0) return EMPTY;
    const { minMs, maxMs, lateFraction, lateMaxMs } = this.#delay;
    const baseMs = b * BUCKET_MS;
    const events: SimEvent[] = new Array(n);
    for (let i = 0; i < n; i++) {
      // A fixed number of draws per event, so changing one knob never reshuffles the rest.
      const offsetMs = rng.int(BUCKET_MS);
      const precisionRoll = rng.next();
      const subRoll = rng.int(1000);
      const lateRoll = rng.next();
      const delayRoll = rng.next();
      const receivedRoll = rng.next();
      const idWords = rng.words();
      const contentWords = rng.words();

      // Fractional digits vary as in STACKIT's docs: none, ms, 10 µs, µs.
      const digits = precisionRoll < 0.2 ? 0 : precisionRoll < 0.7 ? 3 : precisionRoll < 0.85 ? 5 : 6;
      let ms = baseMs + offsetMs;
      if (digits === 0) ms -= ms % 1000;
      const subUs = digits === 5 ? subRoll - (subRoll % 10) : digits === 6 ? subRoll : 0;
      const tUs = ms * 1000 + subUs;
      const late = lateRoll < lateFraction;
      const delayMs = late
        ? Math.round(maxMs + delayRoll * (lateMaxMs - maxMs))
        : Math.round(minMs + delayRoll * (maxMs - minMs));
      const receivedDigits = digits === 0 ? 0 : receivedRoll < 0.7 ? 3 : 6;
      events[i] = {
        scope,
        id: uuidFromWords(idWords),
        tUs,
        eventTimeMs: ms,
        eventTimeText: formatRfc3339Us(tUs, digits),
        receivedTimeText: formatRfc3339Us(tUs + delayMs * 1000, receivedDigits),
        delayMs,
        visibleAtMs: ms + delayMs,
        contentWords,
        rawBytes: undefined,
      };
    }
    events.sort(compareEvents);
    return events;
  }
}

function compareEvents(a: SimEvent, b: SimEvent): number {
  return a.tUs - b.tUs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** First index whose event time is >= `tUs`. */
function lowerBound(events: readonly SimEvent[], tUs: number): number {
  let lo = 0;
  let hi = events.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((events[mid] as SimEvent).tUs < tUs) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
