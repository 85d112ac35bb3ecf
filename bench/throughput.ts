/**
 * End-to-end throughput: simulator (own process) → shipper (own process: real Redis, dedupe, fenced
 * commits, outbox, delivery) → the file sink, then → a Loki-protocol server, against the baseline
 * that fetches the same pages and appends NDJSON without Redis.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { LokiTestServer } from '../test/support/loki-server.ts';
import { lineCounter, redisInfo, type SimChild, shipperConfig, startShipper, until } from './support.ts';

export interface Run {
  readonly events: number;
  readonly seconds: number;
  readonly eventsPerSecond: number;
  readonly cpuSecondsPer1000: number;
  readonly peakRssMiB: number;
  readonly redisCpuSeconds?: number;
}

const LOOKBACK = '10m';

export async function baseline(dir: string, sim: SimChild): Promise<Run> {
  const child = spawn(
    process.execPath,
    [
      new URL('./baseline-child.ts', import.meta.url).pathname,
      JSON.stringify({
        url: sim.url,
        token: sim.token,
        projects: sim.projects,
        lookback: LOOKBACK,
        out: join(dir, 'baseline.ndjson'),
      }),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const line = await new Promise<string>((resolve) =>
    createInterface({ input: child.stdout! }).once('line', resolve),
  );
  const r = JSON.parse(line) as { events: number; seconds: number; cpuSeconds: number; peakRssMiB: number };
  return {
    events: r.events,
    seconds: round(r.seconds),
    eventsPerSecond: Math.round(r.events / r.seconds),
    cpuSecondsPer1000: round(r.cpuSeconds / (r.events / 1000), 4),
    peakRssMiB: r.peakRssMiB,
  };
}

/** One shipper run from empty state until the sink holds `expected` events and its outbox is empty. */
export async function shipper(
  dir: string,
  sim: SimChild,
  redisUrl: string,
  expected: number,
  sink: 'file' | 'loki',
): Promise<Run> {
  const redis = new Redis(redisUrl);
  await redis.flushall();
  let loki: LokiTestServer | undefined;
  let sinks: string;
  let delivered: () => Promise<number>;
  if (sink === 'loki') {
    loki = new LokiTestServer({ rejectOldSamplesMaxAgeMs: 30 * 86_400_000 });
    const url = await loki.start();
    sinks = `  - { name: out, type: loki, url: "${url}", tenant: bench, batch: { maxEvents: 10000, maxBytes: 4MiB, linger: 200ms } }\n`;
    delivered = async () => (loki as LokiTestServer).entries().length;
  } else {
    const path = join(dir, `shipper-${Date.now()}.ndjson`);
    sinks = `  - { name: out, type: file, path: "${path}" }\n`;
    delivered = lineCounter(path);
  }
  const redisCpuBefore = await redisCpu(redisUrl);
  const started = performance.now();
  const child = await startShipper(
    dir,
    shipperConfig({
      dir,
      redisUrl,
      sim,
      interval: '1s',
      lookback: LOOKBACK,
      overlap: '5s',
      settleLag: '1s',
      sinks,
    }),
    sim.token,
  );
  let count = 0;
  await until(
    async () => {
      count = await delivered();
      return count >= expected && (await redis.xlen('{auditlog}:outbox:out')) === 0;
    },
    600_000,
    `${expected} events in the ${sink} sink`,
  );
  const seconds = (performance.now() - started) / 1000;
  const cpu = await child.cpuSeconds();
  const peakRssMiB = await child.peakRssMiB();
  const redisCpuSeconds = round((await redisCpu(redisUrl)) - redisCpuBefore);
  await child.stop();
  await loki?.stop();
  redis.disconnect();
  return {
    events: count,
    seconds: round(seconds),
    eventsPerSecond: Math.round(count / seconds),
    cpuSecondsPer1000: round(cpu / (count / 1000), 4),
    peakRssMiB,
    redisCpuSeconds,
  };
}

async function redisCpu(url: string): Promise<number> {
  const info = await redisInfo(url, 'cpu');
  return Number(info.used_cpu_user ?? 0) + Number(info.used_cpu_sys ?? 0);
}

function round(n: number, digits = 2): number {
  return Number(n.toFixed(digits));
}
