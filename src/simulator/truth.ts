/**
 * Ground truth for test oracles: the events a simulated provider holds, read through the same lazy
 * traffic model the API serves from, so truth and API can never disagree.
 */
import type { SimClock } from './clock.ts';
import { type ScopeRef, type SimEvent, scopeKey, type Traffic } from './traffic.ts';

export interface TruthQuery {
  readonly scope: ScopeRef;
  /** Inclusive lower bound on event time, epoch ms (default: provider now − retention). */
  readonly fromMs?: number | undefined;
  /** Exclusive upper bound on event time, epoch ms (default: provider now + 1 ms). */
  readonly toMs?: number | undefined;
  /** Only events with `visibleAtMs <= visibleBy` (provider clock, epoch ms). */
  readonly visibleBy?: number | undefined;
}

export interface TruthEvent {
  readonly id: string;
  readonly scope: ScopeRef;
  /** Event time, epoch ms, truncated (what `Date.parse(eventTimeText)` gives). */
  readonly eventTimeMs: number;
  /** `eventTimeStamp` exactly as the API prints it (0, 3, 5 or 6 fractional digits). */
  readonly eventTimeText: string;
  /** `receivedTimeStamp` exactly as the API prints it. */
  readonly receivedTimeText: string;
  /** Provider clock (epoch ms) from which the API returns the event. */
  readonly visibleAtMs: number;
  /** The item's JSON text, byte for byte as it appears in a response's `items` array. */
  readonly raw: string;
}

export interface ServedScope extends ScopeRef {
  readonly eventsPerMinute: number;
}

export class Truth {
  readonly #traffic: Traffic;
  readonly #clock: SimClock;
  readonly #retentionMs: number;

  constructor(traffic: Traffic, clock: SimClock, retentionMs: number) {
    this.#traffic = traffic;
    this.#clock = clock;
    this.#retentionMs = retentionMs;
  }

  /** The scopes the simulator serves. */
  scopes(): ServedScope[] {
    return this.#traffic
      .scopes()
      .map((s) => ({ kind: s.ref.kind, id: s.ref.id, eventsPerMinute: s.eventsPerMinute }));
  }

  /** Events of one scope with event time in `[fromMs, toMs)`, ascending by `(event time, id)`. */
  events(query: TruthQuery): TruthEvent[] {
    return [...this.iterate(query)];
  }

  count(query: TruthQuery): number {
    let n = 0;
    for (const _ of this.#scan(query)) n++;
    return n;
  }

  /** Like `events`, lazily (for large ranges). */
  *iterate(query: TruthQuery): Generator<TruthEvent, void, undefined> {
    for (const event of this.#scan(query)) yield this.#toTruth(event);
  }

  #scan(query: TruthQuery): Generator<SimEvent, void, undefined> {
    const scope = this.#traffic.scope(query.scope.kind, query.scope.id);
    if (!scope) {
      throw new Error(`the simulator serves no scope ${scopeKey(query.scope.kind, query.scope.id)}`);
    }
    const now = this.#clock.simNow();
    const fromMs = query.fromMs ?? now - this.#retentionMs;
    const toMs = query.toMs ?? now + 1;
    return this.#traffic.scan(scope, {
      fromUs: Math.ceil(fromMs) * 1000,
      toUs: Math.ceil(toMs) * 1000,
      order: 'asc',
      visibleBy: query.visibleBy,
    });
  }

  #toTruth(event: SimEvent): TruthEvent {
    return {
      id: event.id,
      scope: event.scope.ref,
      eventTimeMs: event.eventTimeMs,
      eventTimeText: event.eventTimeText,
      receivedTimeText: event.receivedTimeText,
      visibleAtMs: event.visibleAtMs,
      raw: this.#traffic.raw(event),
    };
  }
}
