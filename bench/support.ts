/** Shared pieces of the benchmarks: child processes measured through /proc, configs, counters. */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';

/**
 * The Node flags the image runs the shipper with (the Dockerfile's NODE_OPTIONS), so the figures are
 * the image's; BENCH_NODE_ARGS replaces them (e.g. "" for V8's defaults, or --cpu-prof).
 */
const IMAGE_NODE_OPTIONS =
  /NODE_OPTIONS="([^"]*)"/.exec(readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8'))?.[1] ?? '';

/**
 * The shipper as the image runs it: the compiled dist/ (`npm run bench` builds it first), so Node's
 * TypeScript stripping and its memory are not part of the figures. BENCH_FROM_SOURCES=1 runs src/.
 */
const MAIN = new URL(
  process.env.BENCH_FROM_SOURCES ? '../src/cli/main.ts' : '../dist/cli/main.js',
  import.meta.url,
).pathname;
const CLOCK_TICKS = 100; // Linux USER_HZ

export interface SimChild {
  readonly url: string;
  readonly token: string;
  readonly projects: string[];
  readonly child: ChildProcess;
  /** Events with event time in [fromMs, toMs), with when each became visible. */
  truth(fromMs: number, toMs: number): Promise<Array<{ id: string; visibleAtMs: number }>>;
  stop(): Promise<void>;
}

export async function startSim(options: {
  scopes: number;
  eventsPerMinute: number;
  seed: number;
  delayMaxMs?: number;
}): Promise<SimChild> {
  const child = spawn(
    process.execPath,
    [new URL('./sim-child.ts', import.meta.url).pathname, JSON.stringify(options)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const line = await new Promise<string>((resolve) =>
    createInterface({ input: child.stdout! }).once('line', resolve),
  );
  const { url, token, projects } = JSON.parse(line) as { url: string; token: string; projects: string[] };
  return {
    url,
    token,
    projects,
    child,
    async truth(fromMs, toMs) {
      const out: Array<{ id: string; visibleAtMs: number }> = [];
      for (const id of projects) {
        const body = await (
          await fetch(`${url}/_sim/truth?kind=project&id=${id}&from=${fromMs}&to=${toMs}`)
        ).text();
        for (const row of body.split('\n')) {
          if (row) out.push(JSON.parse(row) as { id: string; visibleAtMs: number });
        }
      }
      return out;
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

/** The shipper's config for a benchmark: the simulator as provider, no rate limit, the given sinks. */
export function shipperConfig(o: {
  dir: string;
  redisUrl: string;
  sim: SimChild;
  interval: string;
  lookback: string;
  overlap: string;
  settleLag: string;
  sinks: string;
  concurrency?: number;
  metricsPort?: number;
}): string {
  return `daemon:
  dataDir: ${o.dir}
  redis: { url: "${o.redisUrl}" }
  metrics: { port: ${o.metricsPort ?? 0}, perScopeLabels: false }
  log: { level: warn }
  poll: { concurrency: ${o.concurrency ?? 8}, interval: ${o.interval} }
  delivery: { batchSize: 1000 }
providers:
  - name: sim
    type: stackit
    auditLogUrl: "${o.sim.url}"
    allowInsecureHttp: true
    auth: { token: "\${SIM_TOKEN}" }
    rateLimit: { requestsPerMinute: 1000000, burst: 100000 }
    lookback: ${o.lookback}
    overlap: ${o.overlap}
    settleLag: ${o.settleLag}
scopes:
${o.sim.projects.map((id) => `  - { provider: sim, project: ${id} }`).join('\n')}
sinks:
${o.sinks}`;
}

export interface ShipperChild {
  readonly child: ChildProcess;
  /** CPU seconds (user + system) so far. */
  cpuSeconds(): Promise<number>;
  /** Peak resident set size so far, MiB. */
  peakRssMiB(): Promise<number>;
  stop(): Promise<void>;
}

/** `auditlog-shipper run -c <config>` as a child process, measured through /proc (Linux). */
export async function startShipper(dir: string, config: string, token: string): Promise<ShipperChild> {
  const path = join(dir, `shipper-${Date.now()}.yaml`);
  await writeFile(path, config);
  const child = spawn(
    process.execPath,
    [
      ...(process.env.BENCH_NODE_ARGS ?? IMAGE_NODE_OPTIONS).split(' ').filter(Boolean),
      MAIN,
      'run',
      '-c',
      path,
    ],
    {
      env: { ...process.env, SIM_TOKEN: token },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const pid = child.pid as number;
  return {
    child,
    async cpuSeconds() {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS; // utime, stime
    },
    async peakRssMiB() {
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      return Math.round(Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024);
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

/** Counts lines of a growing file, reading only what was appended since the last call. */
export function lineCounter(path: string): () => Promise<number> {
  let offset = 0;
  let lines = 0;
  return async () => {
    const file = await open(path, 'r').catch(() => undefined);
    if (!file) return 0;
    try {
      const { size } = await file.stat();
      if (size > offset) {
        const chunk = Buffer.alloc(size - offset);
        await file.read(chunk, 0, chunk.length, offset);
        for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
        offset = size;
      }
      return lines;
    } finally {
      await file.close();
    }
  };
}

export async function redisInfo(url: string, section: string): Promise<Record<string, string>> {
  const redis = new Redis(url);
  try {
    const text = await redis.info(section);
    return Object.fromEntries(
      text
        .split('\r\n')
        .filter((l) => l.includes(':'))
        .map((l) => l.split(':', 2) as [string, string]),
    );
  } finally {
    redis.disconnect();
  }
}

export async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`benchmark: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}
