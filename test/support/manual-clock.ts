/**
 * Virtual time for code that takes a clock: `now()` moves only when the test says so, and `sleep` resolves
 * when the test has moved time past its end. What a test then asserts follows from the code's arithmetic,
 * never from how fast a loaded machine happens to run it.
 */
export class ManualClock {
  #nowMs: number;
  readonly #sleepers: Array<{ atMs: number; wake: () => void }> = [];

  constructor(startMs = 1_000_000) {
    this.#nowMs = startMs;
  }

  readonly now = (): number => this.#nowMs;

  readonly sleep = (ms: number, signal: AbortSignal): Promise<void> =>
    new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const sleeper = {
        atMs: this.#nowMs + Math.max(0, ms),
        wake: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        this.#sleepers.splice(this.#sleepers.indexOf(sleeper), 1);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#sleepers.push(sleeper);
    });

  /** How many callers are asleep right now. */
  get sleeping(): number {
    return this.#sleepers.length;
  }

  /** When the earliest sleeper wakes (undefined: nobody sleeps). */
  get nextWakeMs(): number | undefined {
    return this.#sleepers.length === 0 ? undefined : Math.min(...this.#sleepers.map((s) => s.atMs));
  }

  /** Moves time to `toMs` (never backwards) and wakes every sleeper that is due by then. */
  advanceTo(toMs: number): void {
    this.#nowMs = Math.max(this.#nowMs, toMs);
    for (const sleeper of [...this.#sleepers]) {
      if (sleeper.atMs <= this.#nowMs) {
        this.#sleepers.splice(this.#sleepers.indexOf(sleeper), 1);
        sleeper.wake();
      }
    }
  }

  advanceBy(ms: number): void {
    this.advanceTo(this.#nowMs + ms);
  }
}
