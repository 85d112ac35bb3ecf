/**
 * Fault injection and the request budget. Faults come from an explicit FIFO queue (consumed one per
 * request, in order, before any rate applies) or from seeded per-request probabilities, so a run with
 * the same seed and the same request sequence meets the same faults.
 */
import { Rng } from './random.ts';

export const MALFORMED_KINDS = [
  'invalid-json',
  'html',
  'missing-items',
  'items-not-array',
  'item-wrong-types',
  'cursor-wrong-type',
] as const;
export type MalformedKind = (typeof MALFORMED_KINDS)[number];

export const FAULT_STATUSES = [500, 502, 503, 504] as const;
export type FaultStatus = (typeof FAULT_STATUSES)[number];

export type Fault =
  /** A server/gateway error with a JSON body (and `Retry-After` when `retryAfterSec` is given). */
  | { readonly type: 'status'; readonly status: FaultStatus; readonly retryAfterSec?: number | undefined }
  /** The correct response, sent after `delayMs`. */
  | { readonly type: 'slow'; readonly delayMs: number }
  /** The socket is reset without any response. */
  | { readonly type: 'reset' }
  /** A 200 whose body is broken in the named way; transient, the truth is unaffected. */
  | { readonly type: 'malformed'; readonly kind: MalformedKind }
  /** A correct page whose `cursor` is the request's own cursor again (a pagination loop). */
  | { readonly type: 'repeat-cursor' }
  /**
   * cloudscale only: a correct page whose links carry a cursor never handed out before that stands
   * where the request stood, so following it returns the same entries again (a loop the cursor alone
   * does not show). Other providers answer normally.
   */
  | { readonly type: 'repeat-page' };

/** Per-request probabilities; at most one fault per request (the rates are tried in this order). */
export interface FaultRates {
  readonly serverErrorRate?: number | undefined;
  /** Statuses a rate-drawn server error picks from (default 500, 502, 503, 504). */
  readonly serverErrorStatuses?: readonly FaultStatus[] | undefined;
  readonly resetRate?: number | undefined;
  readonly slowRate?: number | undefined;
  /** Delay of a rate-drawn slow response (default 2,000 ms). */
  readonly slowDelayMs?: number | undefined;
  readonly malformedRate?: number | undefined;
  /** Kinds a rate-drawn malformed response picks from (default all). */
  readonly malformedKinds?: readonly MalformedKind[] | undefined;
  readonly repeatCursorRate?: number | undefined;
}

/** The JSON body of `PUT /_sim/faults`: applied in the order clear, rates, enqueue. */
export interface FaultControl {
  readonly clear?: boolean | undefined;
  readonly rates?: FaultRates | undefined;
  readonly enqueue?: readonly Fault[] | undefined;
}

export class FaultInjector {
  readonly #rng: Rng;
  #rates: FaultRates = {};
  readonly #queue: Fault[] = [];
  #injected = 0;

  constructor(seed: number, rates?: FaultRates) {
    this.#rng = Rng.fromString(`${seed}|faults`);
    if (rates) this.set(rates);
  }

  /** Replaces the rates (omitted rates become 0). */
  set(rates: FaultRates): void {
    this.#rates = parseFaultRates(rates);
  }

  /** Appends faults that the next requests consume, one each, in order. */
  enqueue(...faults: Fault[]): void {
    for (const fault of faults) this.#queue.push(parseFault(fault));
  }

  /** Empties the queue and sets every rate to 0. */
  clear(): void {
    this.#queue.length = 0;
    this.#rates = {};
  }

  rates(): FaultRates {
    return { ...this.#rates };
  }

  pending(): Fault[] {
    return [...this.#queue];
  }

  /** Faults handed out so far. */
  get injected(): number {
    return this.#injected;
  }

  /** Applies a control document (`PUT /_sim/faults`). */
  control(doc: FaultControl): void {
    if (doc.clear) this.clear();
    if (doc.rates) this.set(doc.rates);
    if (doc.enqueue) this.enqueue(...doc.enqueue);
  }

  /** The fault for the next request, if any: the queue first, then the rates. */
  next(): Fault | undefined {
    const queued = this.#queue.shift();
    if (queued) {
      this.#injected++;
      return queued;
    }
    const r = this.#rates;
    // Always two draws, so the fault sequence depends only on the request count.
    const roll = this.#rng.next();
    const pick = this.#rng.next();
    const kinds = r.malformedKinds?.length ? r.malformedKinds : MALFORMED_KINDS;
    const statuses = r.serverErrorStatuses?.length ? r.serverErrorStatuses : FAULT_STATUSES;
    const candidates: [number, () => Fault][] = [
      [
        r.serverErrorRate ?? 0,
        () => ({ type: 'status', status: statuses[Math.floor(pick * statuses.length)] as FaultStatus }),
      ],
      [r.resetRate ?? 0, () => ({ type: 'reset' })],
      [r.slowRate ?? 0, () => ({ type: 'slow', delayMs: r.slowDelayMs ?? 2_000 })],
      [
        r.malformedRate ?? 0,
        () => ({ type: 'malformed', kind: kinds[Math.floor(pick * kinds.length)] as MalformedKind }),
      ],
      [r.repeatCursorRate ?? 0, () => ({ type: 'repeat-cursor' })],
    ];
    let edge = 0;
    let fault: Fault | undefined;
    for (const [probability, make] of candidates) {
      edge += probability;
      if (roll < edge) {
        fault = make();
        break;
      }
    }
    if (fault) this.#injected++;
    return fault;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function rate(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !(value >= 0 && value <= 1))
    throw new Error(`${name} must be a number in [0, 1]`);
  return value;
}

/** Validates fault rates (from code or JSON); throws with a readable message. */
export function parseFaultRates(input: unknown): FaultRates {
  if (!isObject(input)) throw new Error('rates must be an object');
  const known = new Set([
    'serverErrorRate',
    'serverErrorStatuses',
    'resetRate',
    'slowRate',
    'slowDelayMs',
    'malformedRate',
    'malformedKinds',
    'repeatCursorRate',
  ]);
  for (const key of Object.keys(input)) if (!known.has(key)) throw new Error(`unknown fault rate "${key}"`);
  const out: {
    -readonly [K in keyof FaultRates]: FaultRates[K];
  } = {};
  const assign = <K extends keyof FaultRates>(key: K, value: FaultRates[K] | undefined): void => {
    if (value !== undefined) out[key] = value;
  };
  assign('serverErrorRate', rate(input.serverErrorRate, 'serverErrorRate'));
  assign('resetRate', rate(input.resetRate, 'resetRate'));
  assign('slowRate', rate(input.slowRate, 'slowRate'));
  assign('malformedRate', rate(input.malformedRate, 'malformedRate'));
  assign('repeatCursorRate', rate(input.repeatCursorRate, 'repeatCursorRate'));
  if (input.slowDelayMs !== undefined) {
    if (typeof input.slowDelayMs !== 'number' || !(input.slowDelayMs >= 0)) {
      throw new Error('slowDelayMs must be a number >= 0');
    }
    out.slowDelayMs = input.slowDelayMs;
  }
  if (input.serverErrorStatuses !== undefined) {
    const list = input.serverErrorStatuses;
    if (!Array.isArray(list) || !list.every((s) => (FAULT_STATUSES as readonly unknown[]).includes(s))) {
      throw new Error(`serverErrorStatuses must be a list of ${FAULT_STATUSES.join(', ')}`);
    }
    out.serverErrorStatuses = list as FaultStatus[];
  }
  if (input.malformedKinds !== undefined) {
    const list = input.malformedKinds;
    if (!Array.isArray(list) || !list.every((k) => (MALFORMED_KINDS as readonly unknown[]).includes(k))) {
      throw new Error(`malformedKinds must be a list of ${MALFORMED_KINDS.join(', ')}`);
    }
    out.malformedKinds = list as MalformedKind[];
  }
  return out;
}

/** Validates one fault (from code or JSON); throws with a readable message. */
export function parseFault(input: unknown): Fault {
  if (!isObject(input)) throw new Error('a fault must be an object with a "type"');
  switch (input.type) {
    case 'status': {
      const status = input.status;
      if (!(FAULT_STATUSES as readonly unknown[]).includes(status)) {
        throw new Error(`status fault needs status ${FAULT_STATUSES.join('|')}`);
      }
      const retry = input.retryAfterSec;
      if (retry !== undefined && (typeof retry !== 'number' || !(retry >= 0))) {
        throw new Error('retryAfterSec must be a number >= 0');
      }
      return retry === undefined
        ? { type: 'status', status: status as FaultStatus }
        : { type: 'status', status: status as FaultStatus, retryAfterSec: retry };
    }
    case 'slow': {
      const delayMs = input.delayMs;
      if (typeof delayMs !== 'number' || !(delayMs >= 0)) throw new Error('slow fault needs delayMs >= 0');
      return { type: 'slow', delayMs };
    }
    case 'reset':
      return { type: 'reset' };
    case 'malformed': {
      const kind = input.kind;
      if (!(MALFORMED_KINDS as readonly unknown[]).includes(kind)) {
        throw new Error(`malformed fault needs kind ${MALFORMED_KINDS.join('|')}`);
      }
      return { type: 'malformed', kind: kind as MalformedKind };
    }
    case 'repeat-cursor':
      return { type: 'repeat-cursor' };
    case 'repeat-page':
      return { type: 'repeat-page' };
    default:
      throw new Error(`unknown fault type ${JSON.stringify(input.type)}`);
  }
}

/** A token bucket per bearer token: `capacity` requests at once, refilled at `refillPerSecond`. */
export interface BudgetOptions {
  readonly capacity: number;
  readonly refillPerSecond: number;
}

export type BudgetVerdict = { readonly ok: true } | { readonly ok: false; readonly retryAfterSec: number };

export class RateBudget {
  readonly #now: () => number;
  #options: BudgetOptions | undefined;
  readonly #buckets = new Map<string, { tokens: number; atMs: number }>();

  constructor(now: () => number, options?: BudgetOptions) {
    this.#now = now;
    this.set(options);
  }

  /** Replaces the budget (undefined: unlimited); every bucket starts full again. */
  set(options: BudgetOptions | undefined): void {
    if (options && !(options.capacity >= 1 && options.refillPerSecond > 0)) {
      throw new Error('budget needs capacity >= 1 and refillPerSecond > 0');
    }
    this.#options = options;
    this.#buckets.clear();
  }

  get options(): BudgetOptions | undefined {
    return this.#options;
  }

  /** Takes one token for `key`, or says how many whole seconds until one is available. */
  take(key: string): BudgetVerdict {
    const options = this.#options;
    if (!options) return { ok: true };
    const now = this.#now();
    let bucket = this.#buckets.get(key);
    if (!bucket) {
      bucket = { tokens: options.capacity, atMs: now };
      this.#buckets.set(key, bucket);
    }
    const elapsed = Math.max(0, now - bucket.atMs);
    bucket.tokens = Math.min(options.capacity, bucket.tokens + (elapsed / 1000) * options.refillPerSecond);
    bucket.atMs = now;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { ok: true };
    }
    const waitSec = (1 - bucket.tokens) / options.refillPerSecond;
    return { ok: false, retryAfterSec: Math.max(1, Math.ceil(waitSec - 1e-9)) };
  }
}
