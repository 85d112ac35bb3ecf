/**
 * Test support for cloudscale.ch: an oracle that judges a sink by the simulator's truth through the
 * entries' bytes (cloudscale entries have no id, so the oracle must not depend on the shipper's own
 * id scheme), a hostile server for the origin guard, and an end-to-end scenario with the daemon.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type CloudscaleOptions,
  type CloudscaleTruthEntry,
  type Simulator,
  type SimulatorOptions,
  startSimulator,
} from '../../src/simulator/index.ts';
import { type DaemonProcess, startDaemon, waitFor } from './daemon.ts';
import { closeServer, listenLoopback } from './loopback.ts';
import { readSinkFiles } from './oracle.ts';
import { startTestRedis, type TestRedis } from './redis.ts';

export interface RawVerdict {
  readonly expected: number;
  readonly delivered: number;
  /** Truth entries (their raw text) the sink lacks, once per missing copy. */
  readonly missing: string[];
  /** Entries the sink holds more often than the truth has them. */
  readonly duplicated: string[];
  /** Entries the sink holds that the truth does not know. */
  readonly unexpected: string[];
  /** Event ids used by more than one record (each event must have its own). */
  readonly repeatedIds: string[];
}

/**
 * Compares a sink with the truth as multisets of raw entry text: conservation (every entry, twins
 * included), no duplicates, and integrity (bytes unaltered) in one check, independent of event ids.
 */
export function judgeByRaw(
  truth: readonly { readonly raw: string }[],
  records: readonly { readonly id: string; readonly raw: string }[],
): RawVerdict {
  const want = new Map<string, number>();
  for (const { raw } of truth) want.set(raw, (want.get(raw) ?? 0) + 1);
  const have = new Map<string, number>();
  for (const { raw } of records) have.set(raw, (have.get(raw) ?? 0) + 1);
  const missing: string[] = [];
  const duplicated: string[] = [];
  const unexpected: string[] = [];
  for (const [raw, n] of want) for (let i = have.get(raw) ?? 0; i < n; i++) missing.push(raw);
  for (const [raw, n] of have) {
    const expected = want.get(raw) ?? 0;
    for (let i = expected; i < n; i++) (expected === 0 ? unexpected : duplicated).push(raw);
  }
  const ids = new Map<string, number>();
  for (const { id } of records) ids.set(id, (ids.get(id) ?? 0) + 1);
  return {
    expected: truth.length,
    delivered: records.length,
    missing,
    duplicated,
    unexpected,
    repeatedIds: [...ids].filter(([, n]) => n > 1).map(([id]) => id),
  };
}

export function rawSummary(v: RawVerdict): string {
  return `expected ${v.expected}, delivered ${v.delivered}, missing ${v.missing.length}, duplicated ${v.duplicated.length}, unexpected ${v.unexpected.length}, repeated ids ${v.repeatedIds.length}`;
}

/** The `raw` member of a serialized envelope line (it comes last and is spliced in verbatim). */
export function rawOfLine(line: string): string {
  return line.slice(line.indexOf(',"raw":') + 7, -1);
}

export interface HostileRequest {
  readonly method: string;
  readonly url: string;
  readonly authorization: string | undefined;
}

/** A server on 127.0.0.1 that records every request; the origin guard must keep it empty. */
export async function startHostileServer(): Promise<{
  readonly origin: string;
  readonly requests: HostileRequest[];
  close(): Promise<void>;
}> {
  const requests: HostileRequest[] = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"next":null,"poll_more":null,"results":[]}');
  });
  return { origin: await listenLoopback(server), requests, close: () => closeServer(server) };
}

export interface CloudscaleScenarioOptions {
  readonly projects: number;
  readonly eventsPerMinute: number;
  /** Traffic starts this long before now (inside the daemon's lookback, so the oracle is exact). */
  readonly historyMs: number;
  readonly seed?: number;
  readonly cloudscale?: Omit<CloudscaleOptions, 'projects' | 'trafficStartMs'>;
  readonly sim?: Omit<SimulatorOptions, 'cloudscale' | 'stackit' | 'seed'>;
}

export interface CloudscaleScenario {
  readonly dir: string;
  readonly redis: TestRedis;
  readonly sim: Simulator;
  readonly projects: readonly { readonly name: string; readonly token: string; readonly env: string }[];
  readonly sinkPath: string;
  config(overrides?: { interval?: string; lookback?: string; overlap?: string }): Promise<string>;
  /** `env` overrides the daemon's environment, e.g. `SIM_URL` pointing at a proxy. */
  daemon(configPath: string, env?: Record<string, string>): DaemonProcess;
  /** Every entry the simulator made visible, across all projects. */
  truth(): CloudscaleTruthEntry[];
  verdict(): Promise<RawVerdict>;
  /** After traffic stopped and the last commits are visible: waits until the sink holds the truth. */
  settle(timeoutMs: number): Promise<RawVerdict>;
  close(): Promise<void>;
}

/** A real Redis, the simulator serving cloudscale projects (one token each), and a temp directory. */
export async function startCloudscaleScenario(
  options: CloudscaleScenarioOptions,
): Promise<CloudscaleScenario> {
  const dir = await mkdtemp(join(tmpdir(), 'auditlog-cs-e2e-'));
  const redis = await startTestRedis();
  const seed = options.seed ?? Math.floor(Math.random() * 1e9);
  const projects = Array.from({ length: options.projects }, (_, i) => ({
    name: `project-${i}`,
    token: `cs-${randomBytes(12).toString('hex')}`,
    env: `CS_TOKEN_${i}`,
  }));
  const sim = await startSimulator({
    ...options.sim,
    seed,
    cloudscale: {
      ...options.cloudscale,
      projects: projects.map((p) => ({
        name: p.name,
        token: p.token,
        eventsPerMinute: options.eventsPerMinute,
      })),
      trafficStartMs: Date.now() - options.historyMs,
    },
  });
  const sinkPath = join(dir, 'events.ndjson');
  const daemons: DaemonProcess[] = [];
  const truth = (): CloudscaleTruthEntry[] =>
    projects.flatMap((p) => sim.cloudscale.truth({ project: p.name }));
  const verdict = async (): Promise<RawVerdict> => judgeByRaw(truth(), await readSinkFiles([sinkPath]));
  return {
    dir,
    redis,
    sim,
    projects,
    sinkPath,
    async config(overrides = {}) {
      const text = `daemon:
  dataDir: ${dir}
  redis:
    url: ${redis.url}
  log: { level: debug }
  metrics: { port: 0 }
  poll: { concurrency: 4, leaseTtl: 5s, interval: ${overrides.interval ?? '1s'} }
  delivery: { batchSize: 200, retryInitial: 50ms, retryMax: 1s, consumerTimeout: 1500ms }
  shutdownTimeout: 10s
providers:
  - name: cs
    type: cloudscale
    apiUrl: "\${SIM_URL}"
    allowInsecureHttp: true
    lookback: ${overrides.lookback ?? '30m'}
    overlap: ${overrides.overlap ?? '5m'}
    requestTimeout: 5s
    retry: { attempts: 4, initialBackoff: 50ms, maxBackoff: 400ms }
scopes:
${projects.map((p) => `  - { provider: cs, project: ${p.name}, auth: { token: "\${${p.env}}" } }`).join('\n')}
sinks:
  - name: archive
    type: file
    path: ${sinkPath}
`;
      const path = join(dir, `config-${Math.random().toString(36).slice(2, 8)}.yaml`);
      await writeFile(path, text);
      return path;
    },
    daemon(configPath, overrides = {}) {
      const env: Record<string, string> = { SIM_URL: sim.url };
      for (const p of projects) env[p.env] = p.token;
      Object.assign(env, overrides);
      const d = startDaemon(configPath, env, dir);
      daemons.push(d);
      return d;
    },
    truth,
    verdict,
    async settle(timeoutMs) {
      let last = await verdict();
      await waitFor(
        'every visible cloudscale entry in the sink',
        async () => {
          last = await verdict();
          return last.missing.length === 0;
        },
        timeoutMs,
        500,
      ).catch((error: Error) => {
        throw new Error(`${error.message}: ${rawSummary(last)}`);
      });
      // Two more successful requests per project, whatever the machine's speed: anything those polls
      // would deliver twice shows now.
      const mark = Date.now();
      await waitFor(
        'two more polls of every project',
        () => {
          const after = sim.requestLog.filter(
            (r) => r.route === 'cloudscale.project-logs' && r.status === 200 && r.startedAtMs > mark,
          );
          return projects.every((p) => after.filter((r) => r.scope?.id === p.name).length >= 2);
        },
        timeoutMs,
        100,
      );
      return verdict();
    },
    async close() {
      for (const d of daemons) d.kill('SIGKILL');
      await Promise.all(daemons.map((d) => d.exited));
      await sim.close();
      await redis.stop();
      if (!process.env.KEEP_E2E) await rm(dir, { recursive: true, force: true });
    },
  };
}
