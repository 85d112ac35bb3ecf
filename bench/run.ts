/**
 * The benchmarks, each against a real Redis and the simulator in its own process, the shipper run as
 * its own process (`auditlog-shipper run`) and measured through /proc (Linux):
 *
 *   npm run bench                                  all three, default sizes (about 8 minutes)
 *   npm run bench -- --only throughput --events 200000 --scopes 10
 *   npm run bench -- --only scale --scale-scopes 10000 --scale-minutes 2
 *   npm run bench -- --only freshness
 *   npm run bench -- --only push --push-records 100000
 *
 * Prints a table against the targets and writes bench/results.json.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { RedisServerProcess } from '../src/daemon/redis-server.ts';
import { type FreshnessResult, freshness } from './freshness.ts';
import { type PushResult, push } from './push.ts';
import { type ScaleResult, scale } from './scale.ts';
import { startSim } from './support.ts';
import { baseline, type Run, shipper } from './throughput.ts';

const { values: args } = parseArgs({
  options: {
    only: { type: 'string' },
    events: { type: 'string', default: '100000' },
    scopes: { type: 'string', default: '5' },
    'scale-scopes': { type: 'string', default: '10000' },
    'scale-minutes': { type: 'string', default: '2' },
    'push-records': { type: 'string', default: '100000' },
  },
});
const only = args.only;
const runs = (name: string): boolean => only === undefined || only === name;

const dir = await mkdtemp(join(tmpdir(), 'auditlog-bench-'));
const redis = new RedisServerProcess({ dir: join(dir, 'redis') });
await redis.start();
const results: Record<string, unknown> = {
  date: new Date().toISOString(),
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
  },
  targets: {
    throughputEventsPerSecond: 20_000,
    ratioToBaseline: 0.5,
    scaleRssMiB: 300,
    freshnessP99Seconds: 'poll interval + 2 s',
    pushRecordsPerSecond: 15_000,
    pushRatioToBare: 0.5,
  },
};
const lines: string[] = [];

try {
  if (runs('throughput')) {
    const scopes = Number(args.scopes);
    const rate = Math.ceil(Number(args.events) / scopes / 10);
    const sim = await startSim({ scopes, eventsPerMinute: rate, seed: 42 });
    try {
      // The baseline runs first and also warms the simulator's cache: both runs read the same pages.
      const base = await baseline(dir, sim);
      const expected = Math.floor(base.events * 0.98);
      const file = await shipper(dir, sim, redis.url, expected, 'file');
      const loki = await shipper(dir, sim, redis.url, expected, 'loki');
      results.throughput = { scopes, eventsPerMinutePerScope: rate, baseline: base, file, loki };
      const row = (name: string, r: Run): string =>
        `${name.padEnd(34)} ${String(r.events).padStart(8)} ${r.seconds.toFixed(1).padStart(7)} ${String(r.eventsPerSecond).padStart(9)} ${r.cpuSecondsPer1000.toFixed(3).padStart(10)} ${String(r.peakRssMiB).padStart(8)}`;
      lines.push(
        'THROUGHPUT',
        `${'run'.padEnd(34)} ${'events'.padStart(8)} ${'seconds'.padStart(7)} ${'events/s'.padStart(9)} ${'cpu s/1k'.padStart(10)} ${'rss MiB'.padStart(8)}`,
        row('baseline: fetch + append, no Redis', base),
        row('shipper → file sink', file),
        row('shipper → Loki protocol', loki),
        `file sink: ${pct(file.eventsPerSecond / base.eventsPerSecond)} of the baseline (target ≥ 50%), ` +
          `${file.eventsPerSecond} events/s (target ≥ 20,000); Redis CPU ${file.redisCpuSeconds} s`,
        '',
      );
    } finally {
      await sim.stop();
    }
  }

  if (runs('scale')) {
    const sim = await startSim({ scopes: Number(args['scale-scopes']), eventsPerMinute: 0.5, seed: 7 });
    try {
      const r: ScaleResult = await scale(dir, sim, redis.url, Number(args['scale-minutes']));
      results.scale = r;
      lines.push(
        `SCALE: ${r.scopes} scopes polled every 60 s, ${r.minutes} min at steady state`,
        `  startup ${r.startupSeconds} s, peak RSS ${r.peakRssMiB} MiB (target < 300), CPU ${r.cpuSecondsPerMinute} s per minute`,
        `  at the end: V8 heap ${r.heapUsedMiB} MiB used of ${r.heapTotalMiB} MiB, external ${r.externalMiB} MiB`,
        `  polls completed per minute ${r.pollsPerMinute} (needed ${r.scopes}), worst lag at the end ${r.worstLagSeconds} s`,
        `  Redis memory per scope ${r.redisBytesPerScope} bytes`,
        '',
      );
    } finally {
      await sim.stop();
    }
  }

  if (runs('freshness')) {
    const sim = await startSim({ scopes: 20, eventsPerMinute: 120, seed: 9, delayMaxMs: 500 });
    try {
      const r: FreshnessResult = await freshness(dir, sim, redis.url);
      results.freshness = r;
      lines.push(
        `FRESHNESS: visible at the provider → in the file sink, interval ${r.interval}, settleLag ${r.settleLag}`,
        `  ${r.events} events, missing ${r.missing}; p50 ${r.p50Seconds} s, p99 ${r.p99Seconds} s (target ≤ ${Number.parseInt(r.interval, 10) + 2} s), max ${r.maxSeconds} s`,
        `  Redis memory per event buffered for a sink that is down: ${r.redisBytesPerBufferedEvent} bytes`,
        '',
      );
    } finally {
      await sim.stop();
    }
  }
  if (runs('push')) {
    const r: PushResult = await push(redis.url, Number(args['push-records']));
    results.push = r;
    lines.push(
      `PUSH: OTLP/HTTP protobuf, batches of ${r.batch}, ${r.concurrency} requests in flight`,
      `  bare receiver (decode, ack, no commit): ${r.bare.recordsPerSecond} records/s`,
      `  stackit-telemetry (ack after the commit is durable): ${r.shipper.recordsPerSecond} records/s, ` +
        `${pct(r.shipper.recordsPerSecond / r.bare.recordsPerSecond)} of the bare receiver (target ≥ 50%, ≥ 15,000/s)`,
      '',
    );
  }
  await writeFile(new URL('./results.json', import.meta.url), `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\n${lines.join('\n')}results in bench/results.json`);
} finally {
  await redis.stop();
  await rm(dir, { recursive: true, force: true });
}

function pct(ratio: number): string {
  return `${Math.round(ratio * 100)}%`;
}
