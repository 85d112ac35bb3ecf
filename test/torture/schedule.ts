/**
 * The fault schedule of a torture run: a pure function of the profile and its seed, so a failing run's
 * schedule replays exactly with TORTURE_SEED (the interleaving with the daemons' own timing does not:
 * that is what many seeds and long runs are for). Independent timelines overlap freely: kill -9s of
 * replicas, Redis restarts and pauses, provider episodes, and one per sink; the provider's clock skew
 * holds for the whole run.
 * Episode kinds come in shuffled rounds, so even a short run meets every kind.
 */
import { Rng } from '../../src/simulator/random.ts';
import type { TortureProfile } from './profile.ts';
import { REQUEST_TIMEOUT_MS, SINK_TIMEOUT_MS, STACKIT_SETTLE_LAG_MS } from './world.ts';

export const SINKS_WITH_SERVERS = ['loki', 'es', 's3'] as const;
export type ServerSink = (typeof SINKS_WITH_SERVERS)[number];

export type ProviderEpisode =
  /** A 429 storm: the simulator's request budget drops to a trickle, with or without Retry-After. */
  | {
      readonly type: 'rate-limit';
      readonly capacity: number;
      readonly refillPerSecond: number;
      readonly retryAfter: boolean;
    }
  /** 500/502/503/504 at a rate. */
  | { readonly type: 'server-errors'; readonly rate: number }
  /** Answers slower than the request timeout. */
  | { readonly type: 'timeouts'; readonly rate: number; readonly delayMs: number }
  /** Connections reset without an answer. */
  | { readonly type: 'resets'; readonly rate: number }
  /** A 200 whose body is cut off mid-transfer (the proxy). */
  | { readonly type: 'truncated'; readonly rate: number }
  /** A 200 with a broken body: invalid JSON, HTML, missing or mistyped fields. */
  | { readonly type: 'malformed'; readonly rate: number }
  /** A page whose cursor is the request's own again (a pagination loop). */
  | { readonly type: 'repeat-cursor'; readonly rate: number }
  /** cloudscale's maintenance window: 503 with Retry-After for every request. */
  | { readonly type: 'maintenance'; readonly retryAfterSec: number }
  /** cloudscale refuses stored cursors (400/404/410). */
  | { readonly type: 'cursor-rejected'; readonly count: number; readonly status: 400 | 404 | 410 };

export type SinkEpisode =
  /** The server process is gone: connections are refused. */
  | { readonly type: 'down' }
  /** It answers 503 to everything (Loki's empty ring, ES's cluster block, S3's 503). */
  | { readonly type: 'unavailable' }
  /** 429 (S3: 503 SlowDown) with Retry-After, at a rate. */
  | { readonly type: 'throttled'; readonly rate: number; readonly retryAfterSec: number }
  /** 500/502/503/504 at a rate. */
  | { readonly type: 'server-errors'; readonly rate: number }
  /** Slow answers, some slower than the sink's timeout (the store keeps what it got). */
  | { readonly type: 'slow'; readonly rate: number; readonly delayMs: number }
  /** Stored, but the answer is lost. */
  | { readonly type: 'lost-answers'; readonly rate: number }
  /** Loki: half of each stream stored, then a 500; ES: every other bulk item refused with 429. */
  | { readonly type: 'partial'; readonly rate: number };

export type FaultAction =
  | { readonly kind: 'kill'; readonly slot: number; readonly downMs: number }
  | { readonly kind: 'kill-all'; readonly downMs: number }
  | { readonly kind: 'redis-restart'; readonly downMs: number }
  | { readonly kind: 'redis-pause'; readonly pauseMs: number }
  | { readonly kind: 'provider'; readonly episode: ProviderEpisode; readonly durationMs: number }
  | {
      readonly kind: 'sink';
      readonly sink: ServerSink;
      readonly episode: SinkEpisode;
      readonly durationMs: number;
    };

export interface ScheduledFault {
  /** Offset from the start of the fault phase. */
  readonly atMs: number;
  readonly action: FaultAction;
}

const PROVIDER_TYPES = [
  'rate-limit',
  'server-errors',
  'timeouts',
  'resets',
  'truncated',
  'malformed',
  'repeat-cursor',
  'maintenance',
  'cursor-rejected',
] as const;

const SINK_TYPES = {
  loki: ['down', 'unavailable', 'throttled', 'server-errors', 'slow', 'lost-answers', 'partial'],
  es: ['down', 'unavailable', 'throttled', 'server-errors', 'slow', 'lost-answers', 'partial'],
  s3: ['down', 'unavailable', 'throttled', 'server-errors', 'slow', 'lost-answers'],
} as const;

export interface Schedule {
  /**
   * The provider's clock runs this far ahead of the daemons' (negative: behind), for the whole run: a
   * provider's clock never runs backwards, so the skew is a property of the run, drawn from its seed.
   * Ahead is harmless for any amount short of Loki's 10-minute creation grace; behind eats into the
   * overlap, so it stays within what the settle lag absorbs (docs/torture.md: the rule the oracle holds
   * the shipper to).
   */
  readonly skewMs: number;
  readonly faults: readonly ScheduledFault[];
}

export function buildSchedule(profile: TortureProfile): Schedule {
  const end = profile.faultMs;
  const out: ScheduledFault[] = [];
  const within = (at: number, durationMs = 0): boolean => at + durationMs <= end;
  const range = (rng: Rng, [lo, hi]: readonly [number, number]): number =>
    Math.round(lo + rng.next() * (hi - lo));

  // kill -9 of replicas; about one in twelve takes every replica down at once.
  {
    const rng = Rng.fromString(`${profile.seed}|kills`);
    for (let at = range(rng, profile.killGapMs); within(at, 1_000); at += range(rng, profile.killGapMs)) {
      const downMs = range(rng, profile.restartDelayMs);
      out.push({
        atMs: at,
        action:
          rng.next() < 1 / 12
            ? { kind: 'kill-all', downMs }
            : { kind: 'kill', slot: rng.int(profile.replicas), downMs },
      });
    }
  }

  // Redis: a restart from the AOF (SIGKILL) or a pause (SIGSTOP/SIGCONT), alternating from a random first.
  {
    const rng = Rng.fromString(`${profile.seed}|redis`);
    let restart = rng.next() < 0.5;
    const gap = (): number => Math.round(profile.redisFaultEveryMs * (0.6 + 0.8 * rng.next()));
    for (let at = Math.round(gap() * 0.5); within(at, 10_000); at += gap()) {
      out.push({
        atMs: at,
        // Pauses up to 7 s outlast the lease (3 s) and the delivery heartbeat (2 s): takeovers happen.
        action: restart
          ? { kind: 'redis-restart', downMs: range(rng, [300, 3_000]) }
          : { kind: 'redis-pause', pauseMs: range(rng, [1_000, 7_000]) },
      });
      restart = !restart;
    }
  }

  // Provider episodes, one at a time.
  {
    const rng = Rng.fromString(`${profile.seed}|provider`);
    const kinds = rounds(rng, PROVIDER_TYPES);
    for (let at = range(rng, profile.calmMs); ; ) {
      const durationMs = range(rng, profile.episodeMs);
      if (!within(at, durationMs)) break;
      out.push({
        atMs: at,
        action: { kind: 'provider', episode: providerEpisode(kinds(), rng), durationMs },
      });
      at += durationMs + range(rng, profile.calmMs);
    }
  }

  // Each sink with a server has its own timeline.
  for (const sink of SINKS_WITH_SERVERS) {
    const rng = Rng.fromString(`${profile.seed}|sink|${sink}`);
    const kinds = rounds(rng, SINK_TYPES[sink]);
    for (let at = range(rng, profile.sinkCalmMs); ; ) {
      const durationMs = range(rng, profile.episodeMs);
      if (!within(at, durationMs)) break;
      out.push({ atMs: at, action: { kind: 'sink', sink, episode: sinkEpisode(kinds(), rng), durationMs } });
      at += durationMs + range(rng, profile.sinkCalmMs);
    }
  }

  const skewRng = Rng.fromString(`${profile.seed}|skew`);
  const skewMs =
    skewRng.next() < 0.4
      ? -Math.round(skewRng.next() * (STACKIT_SETTLE_LAG_MS - 1_000))
      : Math.round(5_000 + skewRng.next() * 85_000);
  return { skewMs, faults: out.sort((a, b) => a.atMs - b.atMs) };
}

/** Shuffled rounds of `kinds`: every kind once before any repeats. */
function rounds<T>(rng: Rng, kinds: readonly T[]): () => T {
  let bag: T[] = [];
  return () => {
    if (bag.length === 0) {
      bag = [...kinds];
      for (let i = bag.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [bag[i], bag[j]] = [bag[j] as T, bag[i] as T];
      }
    }
    return bag.pop() as T;
  };
}

function providerEpisode(type: (typeof PROVIDER_TYPES)[number], rng: Rng): ProviderEpisode {
  const rate = (lo: number, hi: number): number => Math.round((lo + rng.next() * (hi - lo)) * 100) / 100;
  switch (type) {
    case 'rate-limit':
      return {
        type,
        capacity: 1 + rng.int(3),
        refillPerSecond: rate(0.5, 2),
        retryAfter: rng.next() < 0.75,
      };
    case 'server-errors':
      return { type, rate: rate(0.2, 0.6) };
    case 'timeouts':
      return { type, rate: rate(0.2, 0.5), delayMs: REQUEST_TIMEOUT_MS + 500 + rng.int(2_000) };
    case 'resets':
    case 'truncated':
    case 'malformed':
      return { type, rate: rate(0.2, 0.5) };
    case 'repeat-cursor':
      return { type, rate: rate(0.1, 0.3) };
    case 'maintenance':
      return { type, retryAfterSec: 1 + rng.int(3) };
    case 'cursor-rejected':
      return {
        type,
        count: 1 + rng.int(4),
        status: ([400, 404, 410] as const)[rng.int(3)] as 400 | 404 | 410,
      };
  }
}

function sinkEpisode(type: SinkEpisode['type'], rng: Rng): SinkEpisode {
  const rate = (lo: number, hi: number): number => Math.round((lo + rng.next() * (hi - lo)) * 100) / 100;
  switch (type) {
    case 'down':
    case 'unavailable':
      return { type };
    case 'throttled':
      return { type, rate: rate(0.3, 0.8), retryAfterSec: 1 + rng.int(2) };
    case 'server-errors':
      return { type, rate: rate(0.3, 0.7) };
    case 'slow':
      return { type, rate: rate(0.3, 0.8), delayMs: 500 + rng.int(SINK_TIMEOUT_MS + 1_500) };
    case 'lost-answers':
    case 'partial':
      return { type, rate: rate(0.3, 0.7) };
  }
}

export function describeAction(action: FaultAction): string {
  switch (action.kind) {
    case 'kill':
      return `kill -9 replica-${action.slot}, restart after ${action.downMs} ms`;
    case 'kill-all':
      return `kill -9 every replica, restart after ${action.downMs} ms`;
    case 'redis-restart':
      return `Redis SIGKILL, restart from AOF after ${action.downMs} ms`;
    case 'redis-pause':
      return `Redis SIGSTOP for ${action.pauseMs} ms`;
    case 'provider':
      return `provider ${JSON.stringify(action.episode)} for ${action.durationMs} ms`;
    case 'sink':
      return `sink ${action.sink} ${JSON.stringify(action.episode)} for ${action.durationMs} ms`;
  }
}

/** The name a fault is counted under in the summary. */
export function faultKind(action: FaultAction): string {
  switch (action.kind) {
    case 'provider':
      return `provider ${action.episode.type}`;
    case 'sink':
      return `${action.sink} ${action.episode.type}`;
    default:
      return action.kind;
  }
}
