/** How many distinct broken items a source remembers; beyond that the oldest is forgotten. */
const STRIKE_MEMORY = 1_000;

/**
 * Counts the consecutive polls that met the same broken item (keyed by a hash of its bytes), so a
 * source can tell a transient glitch from a defect the provider keeps sending. Memory is bounded by
 * dropping the least recently struck key.
 */
export class StrikeCounter {
  readonly #strikes = new Map<string, number>();

  /** Records one more strike for `key` and returns how many it has now. */
  strike(key: string): number {
    const strikes = (this.#strikes.get(key) ?? 0) + 1;
    this.#strikes.delete(key);
    this.#strikes.set(key, strikes);
    if (this.#strikes.size > STRIKE_MEMORY) {
      const oldest = this.#strikes.keys().next().value;
      if (oldest !== undefined) this.#strikes.delete(oldest);
    }
    return strikes;
  }
}
