import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  makeScopeIds,
  type ServiceAccountKeyDocument,
  type Simulator,
  type SimulatorOptions,
  startSimulator,
  type TruthEvent,
} from '../../src/simulator/index.ts';
import {
  type DaemonProcess,
  type ScenarioConfig,
  startDaemon,
  waitFor,
  writeScenarioConfig,
} from './daemon.ts';
import { judge, readSinkFiles, type SinkRecord, summary, type Verdict } from './oracle.ts';
import { startTestRedis, type TestRedis } from './redis.ts';

export interface Scenario {
  readonly dir: string;
  readonly redis: TestRedis;
  readonly sim: Simulator;
  readonly projects: readonly string[];
  readonly trafficStartMs: number;
  /** Writes a config for this scenario (overrides merged in). */
  config(overrides?: Partial<ScenarioConfig>): Promise<string>;
  daemon(configPath: string, env?: Record<string, string>): DaemonProcess;
  /** Every event the simulator made visible in the traffic window, across all projects. */
  truth(): TruthEvent[];
  /** What Redis holds about each scope and the queues, for a failing test's message. */
  diagnose(): Promise<string>;
  /**
   * A service-account key created at the simulator, written to a file; `auth` is the provider's auth
   * block that uses it (with the simulator's token endpoint).
   */
  serviceAccountKey(): Promise<{ path: string; doc: ServiceAccountKeyDocument; auth: string }>;
  /**
   * After traffic stopped: waits until the last late arrivals are visible and the sink files hold every
   * visible event, and returns the final verdict (with Redis diagnostics in the error on a timeout).
   */
  settle(files: () => Promise<string[]>, timeoutMs: number, truth?: () => TruthEvent[]): Promise<Verdict>;
  /**
   * Like `settle`, for any sink: `records` reads back what it holds (see oracle.recordsFromLines);
   * `lateWaitMs`: how long after this call events may still become visible (default: the longest delay).
   */
  settleRecords(
    records: () => Promise<SinkRecord[]>,
    timeoutMs: number,
    what?: string,
    lateWaitMs?: number,
    truth?: () => TruthEvent[],
  ): Promise<Verdict>;
  close(): Promise<void>;
}

export interface ScenarioOptions {
  readonly projects: number;
  readonly eventsPerMinute: number;
  /** Traffic starts this long before now (inside the daemon's lookback, so the oracle is exact). */
  readonly historyMs: number;
  readonly seed?: number;
  readonly sim?: Omit<SimulatorOptions, 'stackit' | 'seed'>;
  readonly delay?: { minMs: number; maxMs: number; lateFraction: number; lateMaxMs: number };
}

/** A real Redis, the simulator with traffic that started `historyMs` ago, and a temp directory. */
export async function startScenario(options: ScenarioOptions): Promise<Scenario> {
  const dir = await mkdtemp(join(tmpdir(), 'auditlog-e2e-'));
  const redis = await startTestRedis();
  const seed = options.seed ?? Math.floor(Math.random() * 1e9);
  const projects = makeScopeIds(seed, options.projects);
  const trafficStartMs = Date.now() - options.historyMs;
  const delay = options.delay ?? { minMs: 200, maxMs: 2_000, lateFraction: 0.1, lateMaxMs: 8_000 };
  const sim = await startSimulator({
    ...options.sim,
    seed,
    stackit: {
      token: `tok-${randomBytes(12).toString('hex')}`,
      scopes: projects.map((id) => ({
        kind: 'project' as const,
        id,
        eventsPerMinute: options.eventsPerMinute,
      })),
      delay,
      trafficStartMs,
    },
  });
  const daemons: DaemonProcess[] = [];
  const scenario: Scenario = {
    dir,
    redis,
    sim,
    projects,
    trafficStartMs,
    config: (overrides = {}) =>
      writeScenarioConfig({ dir, redisUrl: redis.url, simUrl: sim.url, projects, ...overrides }),
    daemon(configPath, env = {}) {
      const d = startDaemon(configPath, { SIM_URL: sim.url, SIM_TOKEN: sim.token, ...env }, dir);
      daemons.push(d);
      return d;
    },
    truth: () =>
      projects.flatMap((id) =>
        sim.truth.events({
          scope: { kind: 'project', id },
          fromMs: trafficStartMs,
          visibleBy: sim.clock.simNow(),
        }),
      ),
    async diagnose() {
      const r = redis.client;
      const out: string[] = [];
      for (const id of projects) {
        const key = `{auditlog}:scope:stackit:project:${id}`;
        out.push(
          `${id}: checkpoint ${JSON.stringify(await r.hgetall(`${key}:checkpoint`))} status ${JSON.stringify(await r.hgetall(`${key}:status`))} lease ${await r.get(`${key}:lease`)} pttl ${await r.pttl(`${key}:lease`)}`,
        );
      }
      const q = '{auditlog}:poll';
      out.push(`schedulers ${JSON.stringify(await r.zrange(`${q}:repeat`, '0', '-1', 'WITHSCORES'))}`);
      out.push(`delayed ${JSON.stringify(await r.zrange(`${q}:delayed`, '0', '-1'))}`);
      out.push(
        `wait ${JSON.stringify(await r.lrange(`${q}:wait`, 0, -1))} active ${JSON.stringify(await r.lrange(`${q}:active`, 0, -1))}`,
      );
      out.push(`failed ${JSON.stringify(await r.zrange(`${q}:failed`, '0', '-1'))}`);
      for (const key of (await r.keys('{auditlog}:outbox:*')).sort()) {
        const sink = key.slice('{auditlog}:outbox:'.length);
        out.push(
          `outbox ${sink} ${await r.xlen(key)} dlq ${await r.xlen(`{auditlog}:dlq:${sink}`).catch(() => 0)}`,
        );
      }
      out.push(`time ${Date.now()}`);
      return out.join('\n');
    },
    async serviceAccountKey() {
      const doc = sim.identity.createKey();
      const path = join(dir, `sa-key-${doc.credentials.kid}.json`);
      await writeFile(path, JSON.stringify(doc, null, 2));
      return { path, doc, auth: `{ serviceAccountKeyFile: ${path}, tokenEndpoint: "\${SIM_URL}/token" }` };
    },
    settle(files, timeoutMs, truth) {
      return scenario.settleRecords(
        async () => readSinkFiles(await files()),
        timeoutMs,
        undefined,
        undefined,
        truth,
      );
    },
    async settleRecords(
      records,
      timeoutMs,
      what = 'the sink',
      lateWaitMs = delay.lateMaxMs + 1_500,
      truth = () => scenario.truth(),
    ) {
      // Events become visible up to `lateWaitMs` after traffic stopped (late arrivals): the verdict is
      // final once the simulator's clock is past that and the sink holds everything then visible. Both
      // are conditions, not a sleep, so a slow machine only makes the wait longer, never the verdict wrong.
      const lastVisibleMs = sim.clock.simNow() + lateWaitMs;
      let verdict = judge(truth(), await records());
      await waitFor(
        `every visible event in ${what}`,
        async () => {
          const final = sim.clock.simNow() >= lastVisibleMs;
          verdict = judge(truth(), await records());
          return final && verdict.missing.length === 0;
        },
        timeoutMs + lateWaitMs,
        500,
      ).catch(async (error: Error) => {
        throw new Error(`${error.message}: ${summary(verdict)}\n${await scenario.diagnose()}`);
      });
      return verdict;
    },
    async close() {
      for (const d of daemons) d.kill('SIGKILL');
      await Promise.all(daemons.map((d) => d.exited));
      await sim.close();
      await redis.stop();
      if (!process.env.KEEP_E2E) await rm(dir, { recursive: true, force: true });
    },
  };
  return scenario;
}
