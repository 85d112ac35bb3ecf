import { LuaScript } from '../pipeline/script.ts';
import type { RedisClient } from '../redis/client.ts';
import { sleep } from './retry.ts';

/**
 * Request budgets shared by every replica: one token bucket per credential and API, held in Redis and
 * updated by one Lua script, so N replicas together never send more than the provider allows. Time is
 * Redis's own clock (`TIME`), so replicas with skewed clocks still agree.
 *
 * Two lanes: live polling takes a token whenever one is there; backfill only when more than a reserve is
 * left, so history reads use idle capacity and never starve live polling. A 429 pauses the whole bucket
 * (every replica) for the provider's Retry-After, or an exponential backoff when it sends none.
 */

export type Lane = 'live' | 'backfill';

export interface RateLimit {
  readonly requestsPerMinute: number;
  /** Requests that may go out at once after an idle spell (the bucket's capacity). */
  readonly burst: number;
}

/** A bucket nobody touched this long is deleted by Redis (it would be full again anyway). */
const IDLE_TTL_MS = 10 * 60_000;
/** Longest single sleep while waiting for a token; the bucket is asked again after it. */
const MAX_SLEEP_MS = 5_000;
const PAUSE_INITIAL_MS = 1_000;
const PAUSE_MAX_MS = 60_000;

/** Redis's clock, unless the caller passed its own (the script's last ARGV; empty: Redis's). */
const NOW = `
local now = tonumber(ARGV[#ARGV])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

/**
 * KEYS: bucket. ARGV: tokens per ms, burst, reserve, ttl, now ('' for Redis's clock).
 * Returns {granted 0|1, wait ms, strikes}: granted, or how long until enough tokens (or the pause) allow.
 */
const TAKE = new LuaScript(`${NOW}
local rate, burst, reserve, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at', 'pausedUntil', 'strikes')
local tokens, at = tonumber(b[1]), tonumber(b[2])
if tokens == nil or at == nil then tokens = burst; at = now end
if now > at then tokens = math.min(burst, tokens + (now - at) * rate); at = now end
local paused = tonumber(b[3]) or 0
local strikes = tonumber(b[4]) or 0
local granted, wait = 0, 0
if paused > now then
  wait = paused - now
elseif tokens >= 1 + reserve then
  tokens = tokens - 1
  granted = 1
else
  wait = math.ceil((1 + reserve - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', at)
redis.call('PEXPIRE', KEYS[1], ttl)
return {granted, wait, strikes}
`);

/**
 * KEYS: bucket. ARGV: retry-after ms (-1: none), initial backoff, max backoff, jitter in [0,1), ttl,
 * now ('' for Redis's clock).
 * Empties the bucket and pauses it; returns {pause ms from now, strikes}.
 */
const PAUSE = new LuaScript(`${NOW}
local explicit, initial, max = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local jitter, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local strikes = (tonumber(redis.call('HGET', KEYS[1], 'strikes')) or 0) + 1
local wait
if explicit >= 0 then
  wait = explicit
else
  wait = math.min(max, initial * 2 ^ math.min(strikes - 1, 20))
  wait = math.floor(wait / 2 + jitter * wait / 2)
end
local untilMs = now + wait
local paused = tonumber(redis.call('HGET', KEYS[1], 'pausedUntil')) or 0
if untilMs > paused then paused = untilMs end
redis.call('HSET', KEYS[1], 'pausedUntil', paused, 'strikes', strikes, 'tokens', '0', 'at', now)
redis.call('PEXPIRE', KEYS[1], ttl)
return {paused - now, strikes}
`);

const RECOVERED = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'strikes', 0) end
return 0
`);

export interface TakeResult {
  /** Time spent waiting for the token. */
  readonly waitedMs: number;
}

export interface PauseResult {
  /** How long the bucket is paused from now (another replica's longer pause wins). */
  readonly pauseMs: number;
  /** 429s in a row on this bucket, across replicas. */
  readonly strikes: number;
}

/** The bucket is paused (the provider answered 429) for longer than the caller is willing to wait. */
export class BudgetPausedError extends Error {
  readonly bucket: string;
  readonly waitMs: number;

  constructor(bucket: string, waitMs: number) {
    super(`the request budget ${bucket} is paused for ${Math.ceil(waitMs / 1000)} s after a 429`);
    this.name = 'BudgetPausedError';
    this.bucket = bucket;
    this.waitMs = waitMs;
  }
}

/**
 * Where a bucket's time comes from. In production: Redis's own clock, real sleeps and real jitter. Tests
 * inject a manual clock so that what they assert (tokens granted, pauses kept) follows from the budget's
 * arithmetic and not from how fast a busy machine happens to run.
 */
export interface BudgetTime {
  /** Milliseconds to pass to the scripts as "now"; absent: Redis's `TIME`, which every replica shares. */
  readonly now?: (() => number) | undefined;
  readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly random: () => number;
}

const REAL_TIME: BudgetTime = { sleep, random: Math.random };

/** Metrics hooks. */
export interface BudgetObserver {
  onWait?(bucket: string, lane: Lane, waitedMs: number): void;
  onPause?(bucket: string, pauseMs: number): void;
}

/** Makes the buckets of one Redis; `keyOf` maps a bucket id to its Redis key (under the shared prefix). */
export class RateBudgets {
  readonly #redis: RedisClient;
  readonly #keyOf: (id: string) => string;
  readonly #observer: BudgetObserver;
  readonly #time: BudgetTime;

  constructor(
    redis: RedisClient,
    keyOf: (id: string) => string,
    observer: BudgetObserver = {},
    time: BudgetTime = REAL_TIME,
  ) {
    this.#redis = redis;
    this.#keyOf = keyOf;
    this.#observer = observer;
    this.#time = time;
  }

  bucket(id: string, limit: RateLimit): RateBucket {
    return new RateBucket(this.#redis, this.#keyOf(id), id, limit, this.#observer, this.#time);
  }
}

export class RateBucket {
  readonly id: string;
  readonly limit: RateLimit;
  readonly #redis: RedisClient;
  readonly #key: string;
  readonly #perMs: number;
  readonly #observer: BudgetObserver;
  readonly #time: BudgetTime;
  /** 429 strikes the bucket reported at the last take; a success then resets them. */
  #strikes = 0;

  constructor(
    redis: RedisClient,
    key: string,
    id: string,
    limit: RateLimit,
    observer: BudgetObserver = {},
    time: BudgetTime = REAL_TIME,
  ) {
    if (!(limit.requestsPerMinute > 0) || !(limit.burst >= 1)) {
      throw new Error(`rate limit of ${id} needs requestsPerMinute > 0 and burst >= 1`);
    }
    this.#redis = redis;
    this.#key = key;
    this.id = id;
    this.limit = limit;
    this.#perMs = limit.requestsPerMinute / 60_000;
    this.#observer = observer;
    this.#time = time;
  }

  /** "now" for the scripts: the injected clock's, or '' for Redis's own. */
  #now(): number | string {
    return this.#time.now?.() ?? '';
  }

  /**
   * Tokens the backfill lane must leave in the bucket: half the burst, so a live poll arriving while a
   * backfill runs finds tokens at once. A bucket of one token has no room for priority.
   */
  get backfillReserve(): number {
    return this.limit.burst >= 2 ? Math.floor(this.limit.burst / 2) : 0;
  }

  /**
   * Waits until the bucket grants one request to `lane`; rejects when `signal` aborts, and with
   * BudgetPausedError when a 429 paused the bucket for longer than `maxPauseWaitMs` (a caller that must
   * not sit out a long pause, e.g. a poll holding a worker, ends instead and comes back later).
   */
  async take(
    lane: Lane,
    signal: AbortSignal,
    maxPauseWaitMs: number = Number.POSITIVE_INFINITY,
  ): Promise<TakeResult> {
    const started = this.#time.now?.() ?? Date.now();
    const reserve = lane === 'backfill' ? this.backfillReserve : 0;
    for (;;) {
      signal.throwIfAborted();
      const [granted, waitMs, strikes] = (await TAKE.run(
        this.#redis,
        [this.#key],
        [this.#perMs, this.limit.burst, reserve, IDLE_TTL_MS, this.#now()],
      )) as [number, number, number];
      this.#strikes = Number(strikes);
      if (Number(granted) === 1) {
        const waitedMs = (this.#time.now?.() ?? Date.now()) - started;
        this.#observer.onWait?.(this.id, lane, waitedMs);
        return { waitedMs };
      }
      // Strikes are set by a 429 and cleared by the next success: a wait with strikes is the pause.
      if (Number(strikes) > 0 && Number(waitMs) > maxPauseWaitMs) {
        throw new BudgetPausedError(this.id, Number(waitMs));
      }
      // A little jitter, so replicas that wait for the same refill do not all ask at the same instant.
      const jitter = Math.floor(this.#time.random() * Math.min(50, 1 + Number(waitMs) / 10));
      await this.#time.sleep(Math.min(MAX_SLEEP_MS, Math.max(1, Number(waitMs)) + jitter), signal);
    }
  }

  /**
   * The provider answered 429: every replica's requests on this bucket wait `retryAfterMs`, or an
   * exponential backoff with jitter (1 s doubling to 60 s) when the provider said nothing.
   */
  async pause(retryAfterMs: number | undefined): Promise<PauseResult> {
    const [pauseMs, strikes] = (await PAUSE.run(
      this.#redis,
      [this.#key],
      [
        retryAfterMs === undefined ? -1 : Math.max(0, Math.round(retryAfterMs)),
        PAUSE_INITIAL_MS,
        PAUSE_MAX_MS,
        this.#time.random(),
        IDLE_TTL_MS,
        this.#now(),
      ],
    )) as [number, number];
    this.#strikes = Number(strikes);
    this.#observer.onPause?.(this.id, Number(pauseMs));
    return { pauseMs: Number(pauseMs), strikes: Number(strikes) };
  }

  /** A request went through: the backoff after the next 429 starts small again. */
  async succeeded(): Promise<void> {
    if (this.#strikes === 0) return;
    this.#strikes = 0;
    await RECOVERED.run(this.#redis, [this.#key], []);
  }
}
