/**
 * What tests observe about the provider-API traffic: a bounded request log, counts per status, and the
 * maximum number of requests in flight at once for any one scope (two daemons must never poll one
 * scope at the same time; this is the number that proves it).
 */
import type { ScopeRef } from './traffic.ts';

/** One provider-API request, logged when its response ended (or the connection did). */
export interface RequestRecord {
  /** Which API route served it, e.g. `stackit.audit-log`. */
  readonly route: string;
  readonly method: string;
  /** Path without the query. */
  readonly path: string;
  /** The scope the path names (null when the path named none). */
  readonly scope: ScopeRef | null;
  /** Query values exactly as sent (null when absent). */
  readonly startRange: string | null;
  readonly endRange: string | null;
  /** `limit` as sent, as a number (null when absent or not a number). */
  readonly limit: number | null;
  readonly cursorPresent: boolean;
  /** HTTP status sent; 0 when no response was sent (reset fault, client went away). */
  readonly status: number;
  /** Wall clock (`Date.now()`, not the injected clock) when the request arrived / its response ended. */
  readonly startedAtMs: number;
  readonly endedAtMs: number;
  /** The provider clock (skewed, injected) when the request arrived. */
  readonly simNowMs: number;
  /** From a `User-Agent` of the form `auditlog-shipper/<version> (instance <id>)`; null otherwise. */
  readonly instance: string | null;
  readonly userAgent: string | null;
  /** The injected fault, e.g. `status:503`, `slow:2000`, `reset`, `malformed:html`, `repeat-cursor`. */
  readonly fault: string | null;
  /** Items in the response body (0 for errors). */
  readonly items: number;
}

/** What a route fills in about a request it serves. */
export interface ObservedInit {
  readonly route: string;
  readonly scope: ScopeRef | null;
  /** In-flight accounting key; requests with the same key count as concurrent on one scope. */
  readonly scopeKey: string | null;
  readonly startRange: string | null;
  readonly endRange: string | null;
  readonly limit: number | null;
  readonly cursorPresent: boolean;
  readonly simNowMs: number;
}

/** A request being served; the route may set `fault` and `items` before the response ends. */
export interface Observation {
  fault: string | null;
  items: number;
}

export interface SimStats {
  /** Provider-API requests whose response ended. */
  readonly requests: number;
  /** Counts per HTTP status (as a string key); `"0"` counts requests that got no response. */
  readonly byStatus: Readonly<Record<string, number>>;
  /** Items sent in 200 responses. */
  readonly itemsServed: number;
  /** Faults injected (queued or drawn from rates). */
  readonly faults: number;
  /** Requests in flight right now. */
  readonly inFlight: number;
}

const INSTANCE = /\(instance ([^)\s]+)\)/;

/** Parses the shipper's `auditlog-shipper/<version> (instance <id>)` User-Agent. */
export function instanceFromUserAgent(userAgent: string | undefined): string | null {
  if (!userAgent) return null;
  return INSTANCE.exec(userAgent)?.[1] ?? null;
}

interface Pending extends Observation {
  readonly init: ObservedInit;
  readonly method: string;
  readonly path: string;
  readonly userAgent: string | null;
  readonly startedAtMs: number;
  done: boolean;
}

export class Observer {
  readonly #size: number;
  readonly #ring: (RequestRecord | undefined)[];
  #next = 0;
  #count = 0;
  readonly #inFlight = new Map<string, number>();
  #inFlightTotal = 0;
  #maxPerScope = 0;
  #requests = 0;
  #byStatus: Record<string, number> = {};
  #items = 0;
  #faults = 0;

  constructor(size = 10_000) {
    this.#size = Math.max(1, size);
    this.#ring = new Array(this.#size);
  }

  begin(init: ObservedInit, method: string, path: string, userAgent: string | undefined): Pending {
    const pending: Pending = {
      init,
      method,
      path,
      userAgent: userAgent ?? null,
      startedAtMs: Date.now(),
      fault: null,
      items: 0,
      done: false,
    };
    this.#inFlightTotal++;
    if (init.scopeKey !== null) {
      const n = (this.#inFlight.get(init.scopeKey) ?? 0) + 1;
      this.#inFlight.set(init.scopeKey, n);
      if (n > this.#maxPerScope) this.#maxPerScope = n;
    }
    return pending;
  }

  end(pending: Pending, status: number): void {
    if (pending.done) return;
    pending.done = true;
    this.#inFlightTotal--;
    const key = pending.init.scopeKey;
    if (key !== null) {
      const n = (this.#inFlight.get(key) ?? 1) - 1;
      if (n <= 0) this.#inFlight.delete(key);
      else this.#inFlight.set(key, n);
    }
    this.#requests++;
    this.#byStatus[String(status)] = (this.#byStatus[String(status)] ?? 0) + 1;
    if (status === 200) this.#items += pending.items;
    if (pending.fault !== null) this.#faults++;
    const { init } = pending;
    this.#ring[this.#next] = {
      route: init.route,
      method: pending.method,
      path: pending.path,
      scope: init.scope,
      startRange: init.startRange,
      endRange: init.endRange,
      limit: init.limit,
      cursorPresent: init.cursorPresent,
      status,
      startedAtMs: pending.startedAtMs,
      endedAtMs: Date.now(),
      simNowMs: init.simNowMs,
      instance: instanceFromUserAgent(pending.userAgent ?? undefined),
      userAgent: pending.userAgent,
      fault: pending.fault,
      items: status === 200 ? pending.items : 0,
    };
    this.#next = (this.#next + 1) % this.#size;
    if (this.#count < this.#size) this.#count++;
  }

  /** The logged requests, oldest first (at most the ring size). */
  records(): RequestRecord[] {
    const out: RequestRecord[] = [];
    const start = (this.#next - this.#count + this.#size) % this.#size;
    for (let i = 0; i < this.#count; i++) {
      const record = this.#ring[(start + i) % this.#size];
      if (record) out.push(record);
    }
    return out;
  }

  stats(): SimStats {
    return {
      requests: this.#requests,
      byStatus: { ...this.#byStatus },
      itemsServed: this.#items,
      faults: this.#faults,
      inFlight: this.#inFlightTotal,
    };
  }

  maxConcurrentPerScope(): number {
    return this.#maxPerScope;
  }

  /** Clears the log, the counters and the concurrency maximum (requests in flight stay counted). */
  reset(): void {
    this.#ring.fill(undefined);
    this.#next = 0;
    this.#count = 0;
    this.#requests = 0;
    this.#byStatus = {};
    this.#items = 0;
    this.#faults = 0;
    let max = 0;
    for (const n of this.#inFlight.values()) max = Math.max(max, n);
    this.#maxPerScope = max;
  }
}
