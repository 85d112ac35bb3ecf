/**
 * How hard and how long a torture run goes. The short profile runs in CI with the normal suite (about
 * two and a half minutes of wall time); the long one runs by hand (`npm run test:torture`) for tens of
 * minutes with hundreds of kill -9s. Environment: TORTURE_PROFILE=short|long, TORTURE_MINUTES (length
 * of the fault phase), TORTURE_SEED (replays a run's fault schedule), TORTURE_REPLICAS.
 */
export interface TortureProfile {
  readonly name: 'short' | 'long';
  readonly seed: number;
  /** Length of the fault phase. */
  readonly faultMs: number;
  /** Daemon replicas against the one Redis. */
  readonly replicas: number;
  readonly stackitProjects: number;
  readonly stackitEventsPerMinute: number;
  readonly cloudscaleProjects: number;
  readonly cloudscaleEventsPerMinute: number;
  /** Gap between two kill -9s (of any replica), uniform in this range. */
  readonly killGapMs: readonly [number, number];
  /** How long a killed replica stays down, uniform in this range. */
  readonly restartDelayMs: readonly [number, number];
  /** Mean gap between Redis faults (restart or pause). */
  readonly redisFaultEveryMs: number;
  /** Provider and sink fault episodes last this long, uniform. */
  readonly episodeMs: readonly [number, number];
  /** Calm between two provider episodes, uniform. */
  readonly calmMs: readonly [number, number];
  /** Calm between two episodes of one sink, uniform (three sinks: mostly one of them is in trouble). */
  readonly sinkCalmMs: readonly [number, number];
  /** After the faults end, every scope's lag must be under `lagBoundS` within this time. */
  readonly livenessLimitMs: number;
  readonly lagBoundS: number;
  /** After traffic stops, every sink must hold every event within this time. */
  readonly settleLimitMs: number;
}

export function profileFromEnv(env: NodeJS.ProcessEnv = process.env): TortureProfile {
  const name = env.TORTURE_PROFILE === 'long' ? 'long' : 'short';
  const seed = env.TORTURE_SEED ? Number(env.TORTURE_SEED) : Math.floor(Math.random() * 1_000_000);
  if (!Number.isSafeInteger(seed))
    throw new Error(`TORTURE_SEED must be an integer, got ${env.TORTURE_SEED}`);
  const base = name === 'long' ? LONG : SHORT;
  const minutes = env.TORTURE_MINUTES ? Number(env.TORTURE_MINUTES) : undefined;
  if (minutes !== undefined && !(minutes > 0)) {
    throw new Error(`TORTURE_MINUTES must be a positive number, got ${env.TORTURE_MINUTES}`);
  }
  const replicas = env.TORTURE_REPLICAS ? Number(env.TORTURE_REPLICAS) : base.replicas;
  if (!(Number.isInteger(replicas) && replicas >= 1 && replicas <= 5)) {
    throw new Error(`TORTURE_REPLICAS must be 1 to 5, got ${env.TORTURE_REPLICAS}`);
  }
  return {
    ...base,
    seed,
    replicas,
    ...(minutes === undefined ? {} : { faultMs: Math.round(minutes * 60_000) }),
  };
}

const SHORT: Omit<TortureProfile, 'seed'> = {
  name: 'short',
  faultMs: 75_000,
  replicas: 2,
  stackitProjects: 3,
  stackitEventsPerMinute: 180,
  cloudscaleProjects: 2,
  cloudscaleEventsPerMinute: 120,
  killGapMs: [3_000, 7_000],
  restartDelayMs: [200, 2_500],
  redisFaultEveryMs: 30_000,
  // Short episodes with short calms: every provider and sink fault kind gets its turn.
  episodeMs: [3_000, 7_000],
  calmMs: [500, 2_500],
  sinkCalmMs: [1_000, 4_000],
  livenessLimitMs: 60_000,
  lagBoundS: 20,
  settleLimitMs: 60_000,
};

const LONG: Omit<TortureProfile, 'seed'> = {
  name: 'long',
  faultMs: 15 * 60_000,
  replicas: 3,
  stackitProjects: 5,
  stackitEventsPerMinute: 240,
  cloudscaleProjects: 3,
  cloudscaleEventsPerMinute: 150,
  killGapMs: [1_500, 5_000],
  restartDelayMs: [100, 3_000],
  redisFaultEveryMs: 45_000,
  episodeMs: [5_000, 25_000],
  calmMs: [2_000, 15_000],
  sinkCalmMs: [5_000, 30_000],
  livenessLimitMs: 120_000,
  lagBoundS: 20,
  settleLimitMs: 120_000,
};
