/**
 * The provider's clock. `now()` is the injected client-side clock (default `Date.now`); the provider
 * runs `skewMs` ahead of it (negative: behind). Retention, visibility and "now" on the provider side all
 * use `simNow()`; rate budgets use the unskewed clock (a constant offset does not change a refill).
 */
export class SimClock {
  readonly #now: () => number;
  #skewMs: number;

  constructor(now: () => number = Date.now, skewMs = 0) {
    this.#now = now;
    this.#skewMs = skewMs;
  }

  /** The injected (client-side) clock, epoch ms. */
  clientNow(): number {
    return this.#now();
  }

  /** The provider's clock: client clock + skew, epoch ms. */
  simNow(): number {
    return Math.floor(this.#now() + this.#skewMs);
  }

  get skewMs(): number {
    return this.#skewMs;
  }

  set skewMs(value: number) {
    if (!Number.isFinite(value)) throw new Error(`skewMs must be a finite number, got ${value}`);
    this.#skewMs = value;
  }
}
