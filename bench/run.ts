/**
 * End-to-end throughput benchmark: simulator (own process) → shipper (this process: real Redis,
 * dedupe, fenced commits, outbox, delivery) → file sink, against a baseline that fetches the same
 * pages with the same source code and appends NDJSON with no Redis at all: the ceiling.
 *
 *   npm run bench [-- --events 200000 --scopes 10]
 *
 * Prints a table and writes bench/results.json.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { withEnv } from '../src/config/fields.ts';
import { loadConfigOrThrow } from '../src/config/load.ts';
import { Daemon } from '../src/daemon/daemon.ts';
import { RedisServerProcess } from '../src/daemon/redis-server.ts';
import { serializeEnvelope } from '../src/pipeline/envelope.ts';
import { stackitProviderSchema, stackitScopeSchema } from '../src/sources/stackit/config.ts';
import { StackitSource } from '../src/sources/stackit/source.ts';

const { values: args } = parseArgs({
  options: { events: { type: 'string', default: '100000' }, scopes: { type: 'string', default: '5' } },
});
const targetEvents = Number(args.events);
const scopes = Number(args.scopes);
const LOOKBACK_MIN = 10;
const rate = Math.ceil(targetEvents / scopes / LOOKBACK_MIN);
const log = pino({ level: 'silent' });

const dir = await mkdtemp(join(tmpdir(), 'auditlog-bench-'));
const redisServer = new RedisServerProcess({ dir: join(dir, 'redis') });
await redisServer.start();
const sim = spawn(
  process.execPath,
  [new URL('./sim-child.ts', import.meta.url).pathname, String(scopes), String(rate), '42'],
  {
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
const { url, token, projects } = JSON.parse(
  await new Promise<string>((resolve) => createInterface({ input: sim.stdout! }).once('line', resolve)),
) as { url: string; token: string; projects: string[] };

try {
  const baseline = await runBaseline();
  const shipper = await runShipper();
  const ratio = shipper.eventsPerSecond / baseline.eventsPerSecond;
  const results = {
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
    },
    workload: { scopes, eventsPerMinutePerScope: rate, lookbackMinutes: LOOKBACK_MIN },
    baseline,
    shipper,
    ratioToBaseline: Number(ratio.toFixed(3)),
    targets: { eventsPerSecond: 20_000, ratioToBaseline: 0.5 },
  };
  await writeFile(new URL('./results.json', import.meta.url), `${JSON.stringify(results, null, 2)}\n`);
  const row = (name: string, r: Run): string =>
    `${name.padEnd(28)} ${String(r.events).padStart(8)} ${r.seconds.toFixed(2).padStart(8)} ${Math.round(r.eventsPerSecond).toString().padStart(10)} ${r.cpuSecondsPer1000.toFixed(3).padStart(12)} ${String(r.peakRssMiB).padStart(10)}`;
  console.log(
    `\n${'run'.padEnd(28)} ${'events'.padStart(8)} ${'seconds'.padStart(8)} ${'events/s'.padStart(10)} ${'cpu s/1000'.padStart(12)} ${'rss MiB'.padStart(10)}`,
  );
  console.log(row('baseline (fetch + append)', baseline));
  console.log(row('shipper → file sink', shipper));
  console.log(
    `\nshipper / baseline: ${(ratio * 100).toFixed(0)}% (target ≥ 50%); target ≥ 20,000 events/s end to end`,
  );
  console.log(
    `redis CPU during the shipper run: ${shipper.redisCpuSeconds?.toFixed(2)} s; results in bench/results.json`,
  );
} finally {
  sim.kill('SIGTERM');
  await redisServer.stop();
  await rm(dir, { recursive: true, force: true });
}

interface Run {
  events: number;
  seconds: number;
  eventsPerSecond: number;
  cpuSecondsPer1000: number;
  peakRssMiB: number;
  redisCpuSeconds?: number;
}

function providerSettings() {
  return withEnv({ T: token }, () =>
    stackitProviderSchema.parse({
      auditLogUrl: url,
      auth: { token: '${T}' },
      lookback: `${LOOKBACK_MIN}m`,
      overlap: '5s',
      settleLag: '1s',
    }),
  );
}

/** The ceiling: the same source code pages the same windows and appends lines, nothing else. */
async function runBaseline(): Promise<Run> {
  const source = new StackitSource(
    { name: 'sim', type: 'stackit', settings: providerSettings() },
    { log, instanceId: 'bench', onRequest: () => {} },
  );
  const file = await open(join(dir, 'baseline.ndjson'), 'a');
  const cpu = process.cpuUsage();
  const started = performance.now();
  let events = 0;
  await Promise.all(
    projects.map(async (id) => {
      const scope = {
        key: `stackit:project:${id}`,
        provider: 'sim',
        ref: { kind: 'project', id },
        settings: stackitScopeSchema.parse({ project: id }),
      };
      for await (const page of source.pull(scope, undefined, {
        signal: new AbortController().signal,
        log,
        now: Date.now,
      })) {
        const now = Date.now();
        if (page.events.length === 0) continue;
        await file.write(`${page.events.map((e) => serializeEnvelope(e, now)).join('\n')}\n`);
        events += page.events.length;
      }
    }),
  );
  await file.datasync();
  await file.close();
  await source.close();
  return measure(events, started, cpu);
}

async function runShipper(): Promise<Run> {
  const sinkPath = join(dir, 'shipper.ndjson');
  const text = `daemon:
  redis: { url: "${redisServer.url}" }
  metrics: { port: 0 }
  log: { level: error }
  poll: { concurrency: ${Math.max(4, scopes)}, interval: 1s }
  delivery: { batchSize: 1000 }
providers:
  - name: sim
    type: stackit
    auditLogUrl: "${url}"
    auth: { token: "\${T}" }
    # Throughput is measured, not the provider's rate limit (the simulator here enforces none).
    rateLimit: { requestsPerMinute: 1000000, burst: 10000 }
    lookback: ${LOOKBACK_MIN}m
    overlap: 5s
    settleLag: 1s
scopes:
${projects.map((id) => `  - { provider: sim, project: ${id} }`).join('\n')}
sinks:
  - { name: file, type: file, path: "${sinkPath}" }
`;
  const { config } = loadConfigOrThrow({ text, origin: 'bench' }, { env: { T: token } });
  const redis = new Redis(redisServer.url);
  const redisCpuBefore = await redisCpu(redis);
  const cpu = process.cpuUsage();
  const started = performance.now();
  const daemon = await Daemon.start(config, { log });
  // Done when every committed event has been written and nothing waits in the outbox.
  const target = await expectedEvents();
  const countLines = lineCounter(sinkPath);
  let delivered = 0;
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    delivered = await countLines();
    if (delivered >= target && (await redis.xlen('{auditlog}:outbox:file')) === 0) break;
  }
  const run = measure(delivered, started, cpu);
  const redisCpuSeconds = (await redisCpu(redis)) - redisCpuBefore;
  await daemon.stop();
  redis.disconnect();
  return { ...run, redisCpuSeconds };
}

/** Events the simulator holds in the lookback at this moment: what the first polls must deliver. */
async function expectedEvents(): Promise<number> {
  const from = Date.now() - LOOKBACK_MIN * 60_000;
  const to = Date.now() - 5_000;
  let total = 0;
  for (const id of projects) {
    const body = await (await fetch(`${url}/_sim/truth?kind=project&id=${id}&from=${from}&to=${to}`)).text();
    total += body.split('\n').filter(Boolean).length;
  }
  return total;
}

/** Counts lines as the file grows, reading only what was appended since the last call. */
function lineCounter(path: string): () => Promise<number> {
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

async function redisCpu(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const num = (name: string): number => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return num('used_cpu_user') + num('used_cpu_sys');
}

function measure(events: number, started: number, cpu: NodeJS.CpuUsage): Run {
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  return {
    events,
    seconds: Number(seconds.toFixed(3)),
    eventsPerSecond: Math.round(events / seconds),
    cpuSecondsPer1000: Number(((used.user + used.system) / 1e6 / (events / 1000)).toFixed(4)),
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}
