/**
 * Freshness at steady state: for every event of a measurement window, the time from the moment the
 * provider made it visible to the moment it appeared in the file sink. Also measures Redis memory per
 * event buffered for a sink that is down (its outbox grows during the run).
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../src/daemon/redis-server.ts';
import { quantile, type SimChild, shipperConfig, startShipper } from './support.ts';

export interface FreshnessResult {
  readonly interval: string;
  readonly settleLag: string;
  readonly events: number;
  readonly missing: number;
  readonly p50Seconds: number;
  readonly p99Seconds: number;
  readonly maxSeconds: number;
  readonly redisBytesPerBufferedEvent: number;
}

const INTERVAL_S = 5;

export async function freshness(dir: string, sim: SimChild, redisUrl: string): Promise<FreshnessResult> {
  const redis = new Redis(redisUrl);
  await redis.flushall();
  const path = join(dir, 'freshness.ndjson');
  const downPort = await freePort(); // nothing listens: the "down" sink's outbox only grows
  const child = await startShipper(
    dir,
    shipperConfig({
      dir,
      redisUrl,
      sim,
      interval: `${INTERVAL_S}s`,
      lookback: '1m',
      overlap: '10s',
      settleLag: '1s',
      sinks:
        `  - { name: out, type: file, path: "${path}" }\n` +
        `  - { name: down, type: loki, url: "http://127.0.0.1:${downPort}", timeout: 1s }\n`,
    }),
    sim.token,
  );
  const arrivals = new Map<string, number>();
  let offset = 0;
  let rest = '';
  const tail = async (): Promise<void> => {
    const file = await open(path, 'r').catch(() => undefined);
    if (!file) return;
    try {
      const { size } = await file.stat();
      if (size <= offset) return;
      const chunk = Buffer.alloc(size - offset);
      await file.read(chunk, 0, chunk.length, offset);
      offset = size;
      const now = Date.now();
      const lines = (rest + chunk.toString('utf8')).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) arrivals.set(line.slice(7, line.indexOf('"', 7)), now);
    } finally {
      await file.close();
    }
  };
  const timer = setInterval(() => void tail(), 50);
  await new Promise((r) => setTimeout(r, 20_000)); // warm-up: the lookback is read, polls settle into phase
  const windowStart = Date.now();
  await new Promise((r) => setTimeout(r, 60_000));
  const windowEnd = Date.now();
  await new Promise((r) => setTimeout(r, 3 * INTERVAL_S * 1_000)); // the window's last events arrive
  clearInterval(timer);
  await tail();
  const truth = await sim.truth(windowStart, windowEnd);
  const delays: number[] = [];
  let missing = 0;
  for (const event of truth) {
    const arrived = arrivals.get(event.id);
    if (arrived === undefined) missing++;
    else delays.push(Math.max(0, arrived - event.visibleAtMs) / 1000);
  }
  delays.sort((a, b) => a - b);
  const buffered = await redis.xlen('{auditlog}:outbox:down');
  const bytes = Number(await redis.call('MEMORY', 'USAGE', '{auditlog}:outbox:down', 'SAMPLES', '0'));
  await child.stop();
  redis.disconnect();
  return {
    interval: `${INTERVAL_S}s`,
    settleLag: '1s',
    events: truth.length,
    missing,
    p50Seconds: Number(quantile(delays, 0.5).toFixed(2)),
    p99Seconds: Number(quantile(delays, 0.99).toFixed(2)),
    maxSeconds: Number((delays.at(-1) ?? Number.NaN).toFixed(2)),
    redisBytesPerBufferedEvent: buffered > 0 ? Math.round(bytes / buffered) : Number.NaN,
  };
}
