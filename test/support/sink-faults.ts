/**
 * Fault control shared by the sink test servers (Loki, Elasticsearch, S3): faults queued for the next
 * requests, or drawn per request at a rate from a seeded generator, so a torture run with the same seed
 * meets the same sequence of faults for the same sequence of requests. Each server decides what a fault
 * looks like in its own protocol (its 429 body, its partial-success answer, …).
 */
import { Rng } from '../../src/simulator/random.ts';

export type SinkFault =
  /** Throttled or failing before anything is stored: a status with the store's own error body. */
  | { readonly kind: 'status'; readonly status: number; readonly retryAfterSec?: number | undefined }
  /** The request is served normally (and stored), but only after this delay, possibly past the client's timeout. */
  | { readonly kind: 'slow'; readonly delayMs: number }
  /** Stored, then the connection is dropped without an answer: the client cannot know it worked. */
  | { readonly kind: 'lost-answer' }
  /** Part of the request is stored and the answer is the store's error for the rest. */
  | { readonly kind: 'partial' };

export interface SinkFaultRates {
  /** Probability that a request meets one of `faults` (picked uniformly). */
  readonly rate: number;
  readonly faults: readonly SinkFault[];
}

export class SinkFaultControl {
  readonly #rng: Rng;
  readonly #queue: SinkFault[] = [];
  #rates: SinkFaultRates | undefined;
  /** Faults handed out so far, by kind (`status:429`, `slow`, `lost-answer`, `partial`). */
  readonly injected = new Map<string, number>();

  constructor(seed: number | string = 1) {
    this.#rng = Rng.fromString(`${seed}|sink-faults`);
  }

  /** Replaces the rates (undefined: none). */
  set(rates: SinkFaultRates | undefined): void {
    this.#rates = rates;
  }

  enqueue(...faults: SinkFault[]): void {
    this.#queue.push(...faults);
  }

  /** Empties the queue and the rates. */
  clear(): void {
    this.#queue.length = 0;
    this.#rates = undefined;
  }

  /** The fault for the next request, if any: the queue first, then the rates. */
  next(): SinkFault | undefined {
    let fault = this.#queue.shift();
    if (!fault && this.#rates && this.#rates.faults.length > 0) {
      // Always two draws, so the sequence depends only on the number of requests.
      const roll = this.#rng.next();
      const pick = this.#rng.int(this.#rates.faults.length);
      if (roll < this.#rates.rate) fault = this.#rates.faults[pick];
    }
    if (fault) {
      const name = fault.kind === 'status' ? `status:${fault.status}` : fault.kind;
      this.injected.set(name, (this.injected.get(name) ?? 0) + 1);
    }
    return fault;
  }

  /** Total faults handed out. */
  total(): number {
    let n = 0;
    for (const count of this.injected.values()) n += count;
    return n;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
