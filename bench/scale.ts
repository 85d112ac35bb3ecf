/**
 * Scale: many scopes on one process, each polled every 60 s, for a bounded few minutes of real time.
 * Reports the shipper's RSS and CPU, Redis memory per scope, and whether every scope really was polled
 * once a minute (polls per minute achieved, worst lag at the end).
 */

import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../src/daemon/redis-server.ts';
import { redisInfo, type SimChild, shipperConfig, startShipper, until } from './support.ts';

export interface ScaleResult {
  readonly scopes: number;
  readonly minutes: number;
  readonly startupSeconds: number;
  readonly peakRssMiB: number;
  /** V8 heap in use and reserved, and memory outside it (Buffers), at the end: where the RSS goes. */
  readonly heapUsedMiB: number;
  readonly heapTotalMiB: number;
  readonly externalMiB: number;
  readonly cpuSecondsPerMinute: number;
  readonly redisBytesPerScope: number;
  readonly pollsPerMinute: number;
  readonly worstLagSeconds: number;
}

export async function scale(
  dir: string,
  sim: SimChild,
  redisUrl: string,
  minutes: number,
): Promise<ScaleResult> {
  const redis = new Redis(redisUrl);
  await redis.flushall();
  const memoryBefore = Number((await redisInfo(redisUrl, 'memory')).used_memory);
  const metricsPort = await freePort();
  const started = performance.now();
  const child = await startShipper(
    dir,
    shipperConfig({
      dir,
      redisUrl,
      sim,
      interval: '60s',
      lookback: '2m',
      overlap: '2m',
      settleLag: '10s',
      concurrency: 32,
      metricsPort,
      sinks: `  - { name: out, type: file, path: "${join(dir, 'scale.ndjson')}" }\n`,
    }),
    sim.token,
  );
  const metrics = async (): Promise<string> =>
    (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  await until(
    async () => {
      try {
        await metrics();
        return true;
      } catch {
        return false;
      }
    },
    300_000,
    'the shipper to start',
  );
  const startupSeconds = (performance.now() - started) / 1000;
  // The first minute spreads the scopes' first polls; steady state is measured after it.
  await new Promise((r) => setTimeout(r, 60_000));
  const cpuAtSteady = await child.cpuSeconds();
  const pollsAtSteady = completedPolls(await metrics());
  await new Promise((r) => setTimeout(r, minutes * 60_000));
  const cpuEnd = await child.cpuSeconds();
  const text = await metrics();
  const pollsPerMinute = (completedPolls(text) - pollsAtSteady) / minutes;
  const worstLagSeconds = Math.max(
    ...[...text.matchAll(/^auditlog_checkpoint_lag_seconds(?:\{[^}]*\})? ([\d.e+-]+)$/gm)].map((m) =>
      Number(m[1]),
    ),
  );
  const peakRssMiB = await child.peakRssMiB();
  const memoryAfter = Number((await redisInfo(redisUrl, 'memory')).used_memory);
  await child.stop();
  redis.disconnect();
  return {
    scopes: sim.projects.length,
    minutes,
    startupSeconds: Number(startupSeconds.toFixed(1)),
    peakRssMiB,
    heapUsedMiB: mib(gauge(text, 'auditlog_nodejs_heap_size_used_bytes')),
    heapTotalMiB: mib(gauge(text, 'auditlog_nodejs_heap_size_total_bytes')),
    externalMiB: mib(gauge(text, 'auditlog_nodejs_external_memory_bytes')),
    cpuSecondsPerMinute: Number(((cpuEnd - cpuAtSteady) / minutes).toFixed(2)),
    redisBytesPerScope: Math.round((memoryAfter - memoryBefore) / sim.projects.length),
    pollsPerMinute: Math.round(pollsPerMinute),
    worstLagSeconds: Math.round(worstLagSeconds),
  };
}

function completedPolls(metrics: string): number {
  return Number(/^auditlog_polls_total\{[^}]*outcome="completed"[^}]*\} (\d+)$/m.exec(metrics)?.[1] ?? 0);
}

function gauge(metrics: string, name: string): number {
  return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([\\d.e+]+)$`, 'm').exec(metrics)?.[1] ?? Number.NaN);
}

function mib(bytes: number): number {
  return Math.round(bytes / 2 ** 20);
}
