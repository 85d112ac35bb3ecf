/**
 * Everything a torture run needs, started together: a real Redis (AOF on), the provider simulator with
 * STACKIT projects (key-flow auth) and cloudscale projects behind a fault proxy, the Loki, Elasticsearch
 * and S3 test servers, and N daemon replicas that share one config and one Redis. Replicas have stable
 * instance ids (a StatefulSet's pod names): a restarted replica appends to its own file again and learns
 * from its tail which events it already holds. A replica that exits on its own is restarted after a
 * second, as Kubernetes would, and the exit is recorded: the suite judges it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeScopeIds, type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { type DaemonProcess, startDaemon } from '../support/daemon.ts';
import { EsTestServer } from '../support/es-server.ts';
import { FaultProxy } from '../support/fault-proxy.ts';
import { LokiTestServer } from '../support/loki-server.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { S3_ACCESS_KEY, S3_SECRET_KEY, S3TestServer } from '../support/s3-server.ts';
import type { TortureProfile } from './profile.ts';

export const ES_KEY = 'dG9ydHVyZTplcy1rZXktc2VjcmV0';
export const S3_PREFIX = 'torture/';
export const PREFIX = '{auditlog}';
/** Events become visible up to this long after their time: the STACKIT overlap, as G3 promises. */
export const STACKIT_OVERLAP_MS = 20_000;
export const STACKIT_SETTLE_LAG_MS = 2_000;
export const STACKIT_LATE_MAX_MS = STACKIT_OVERLAP_MS;
export const CLOUDSCALE_LATE_MAX_MS = 6_000;
/** Provider requests time out after this; "timeout" faults answer later. */
export const REQUEST_TIMEOUT_MS = 2_000;
/** Sink requests time out after this; "slow" sink faults sometimes answer later. */
export const SINK_TIMEOUT_MS = 3_000;

export interface CloudscaleProject {
  readonly name: string;
  readonly token: string;
  readonly env: string;
}

export interface Replica {
  readonly slot: number;
  readonly instanceId: string;
  readonly metricsPort: number;
  process: DaemonProcess | undefined;
  /** Processes started in this slot so far. */
  incarnations: number;
  /** Set while we kill it on purpose, so its exit is not counted as a crash. */
  killing: boolean;
  /** Pending restart (planned or after a crash). */
  restartTimer: NodeJS.Timeout | undefined;
}

export interface UnplannedExit {
  readonly slot: number;
  readonly startedAtMs: number;
  readonly atMs: number;
  readonly code: number | string;
  readonly logPath: string;
  /** The last log lines that say why. */
  readonly why: string;
  /**
   * Whether Redis was down or paused while this process lived and it said it could not reach Redis at
   * start: the process refuses to start without Redis and is restarted like a pod. Counted, not failed.
   */
  readonly redisDown: boolean;
}

export class World {
  readonly dir: string;
  readonly profile: TortureProfile;
  readonly redis: TestRedis;
  readonly sim: Simulator;
  readonly proxy: FaultProxy;
  readonly loki: LokiTestServer;
  readonly es: EsTestServer;
  readonly s3: S3TestServer;
  readonly stackitProjects: readonly string[];
  readonly cloudscaleProjects: readonly CloudscaleProject[];
  readonly trafficStartMs: number;
  readonly replicas: Replica[];
  readonly unplannedExits: UnplannedExit[] = [];
  readonly configPath: string;
  /** When Redis was being restarted or paused (`toMs` unset while it still is). */
  readonly redisOutages: Array<{ fromMs: number; toMs?: number }> = [];
  #closed = false;
  readonly #env: Record<string, string>;

  private constructor(init: {
    dir: string;
    profile: TortureProfile;
    redis: TestRedis;
    sim: Simulator;
    proxy: FaultProxy;
    loki: LokiTestServer;
    es: EsTestServer;
    s3: S3TestServer;
    stackitProjects: string[];
    cloudscaleProjects: CloudscaleProject[];
    trafficStartMs: number;
    metricsPorts: number[];
    configPath: string;
    env: Record<string, string>;
  }) {
    this.dir = init.dir;
    this.profile = init.profile;
    this.redis = init.redis;
    this.sim = init.sim;
    this.proxy = init.proxy;
    this.loki = init.loki;
    this.es = init.es;
    this.s3 = init.s3;
    this.stackitProjects = init.stackitProjects;
    this.cloudscaleProjects = init.cloudscaleProjects;
    this.trafficStartMs = init.trafficStartMs;
    this.configPath = init.configPath;
    this.#env = init.env;
    this.replicas = init.metricsPorts.map((metricsPort, slot) => ({
      slot,
      instanceId: `replica-${slot}`,
      metricsPort,
      process: undefined,
      incarnations: 0,
      killing: false,
      restartTimer: undefined,
    }));
  }

  static async start(profile: TortureProfile, skewMs: number): Promise<World> {
    const dir = await mkdtemp(join(tmpdir(), 'auditlog-torture-'));
    const redis = await startTestRedis();
    const seed = profile.seed;
    const stackitProjects = makeScopeIds(seed, profile.stackitProjects);
    const cloudscaleProjects = Array.from({ length: profile.cloudscaleProjects }, (_, i) => ({
      name: `torture-${i}`,
      token: `cs-${randomBytes(12).toString('hex')}`,
      env: `CS_TOKEN_${i}`,
    }));
    // History that starts inside the daemons' lookback, so the truth of the whole run is owed to the sinks.
    const trafficStartMs = Date.now() - 2 * 60_000;
    const sim = await startSimulator({
      seed,
      skewMs,
      // The whole run's requests: the report counts faults by kind from it.
      requestLogSize: 300_000,
      stackit: {
        token: `tok-${randomBytes(12).toString('hex')}`,
        scopes: stackitProjects.map((id) => ({
          kind: 'project' as const,
          id,
          eventsPerMinute: profile.stackitEventsPerMinute,
        })),
        // Most events show up within two seconds; one in ten is late by up to the overlap (G3).
        delay: { minMs: 200, maxMs: 2_000, lateFraction: 0.1, lateMaxMs: STACKIT_LATE_MAX_MS },
        trafficStartMs,
      },
      cloudscale: {
        projects: cloudscaleProjects.map((p) => ({
          name: p.name,
          token: p.token,
          eventsPerMinute: profile.cloudscaleEventsPerMinute,
        })),
        commit: { minMs: 0, maxMs: 300, lateFraction: 0.1, lateMaxMs: CLOUDSCALE_LATE_MAX_MS },
        backdate: { fraction: 0.05, maxMs: 20_000 },
        twinFraction: 0.02,
        trafficStartMs,
      },
    });
    const proxy = new FaultProxy(sim.url, seed);
    const loki = new LokiTestServer({}, seed);
    const es = new EsTestServer({ authorization: `ApiKey ${ES_KEY}` }, seed);
    const s3 = new S3TestServer('audit', seed);
    await Promise.all([proxy.start(), loki.start(), es.start(), s3.start()]);

    const key = sim.identity.createKey();
    const keyPath = join(dir, 'sa-key.json');
    await writeFile(keyPath, JSON.stringify(key, null, 2));
    const metricsPorts: number[] = [];
    for (let i = 0; i < profile.replicas; i++) metricsPorts.push(await stablePort(metricsPorts));
    const configPath = join(dir, 'torture.yaml');
    await writeFile(
      configPath,
      configText({
        dir,
        redisUrl: redis.url,
        keyPath,
        stackitProjects,
        cloudscaleProjects,
        outboxMaxLength: outboxCap(profile),
      }),
    );
    const env: Record<string, string> = {
      SIM_URL: sim.url,
      PROVIDER_URL: proxy.url,
      LOKI_URL: loki.url,
      ES_URL: es.url,
      ES_KEY,
      S3_URL: s3.url,
      S3_BUCKET: s3.bucket,
      S3_KEY: S3_ACCESS_KEY,
      S3_SECRET: S3_SECRET_KEY,
      METRICS_HOST: '127.0.0.1',
    };
    for (const p of cloudscaleProjects) env[p.env] = p.token;
    return new World({
      dir,
      profile,
      redis,
      sim,
      proxy,
      loki,
      es,
      s3,
      stackitProjects,
      cloudscaleProjects,
      trafficStartMs,
      metricsPorts,
      configPath,
      env,
    });
  }

  /** Scope keys as the daemon names them. */
  scopeKeys(): string[] {
    return [
      ...this.stackitProjects.map((id) => `stackit:project:${id}`),
      ...this.cloudscaleProjects.map((p) => `cloudscale:project:${p.name}`),
    ];
  }

  sinkNames(): string[] {
    return ['file', 'loki', 'es', 's3'];
  }

  /** Secrets that must never appear in a log line. */
  secrets(): string[] {
    return [ES_KEY, S3_SECRET_KEY, this.sim.token, ...this.cloudscaleProjects.map((p) => p.token)];
  }

  startReplica(slot: number): void {
    const replica = this.replicas[slot] as Replica;
    if (this.#closed || replica.process) return;
    clearTimeout(replica.restartTimer);
    replica.restartTimer = undefined;
    replica.incarnations++;
    const startedAtMs = Date.now();
    const daemon = startDaemon(
      this.configPath,
      { ...this.#env, INSTANCE_ID: replica.instanceId, METRICS_PORT: String(replica.metricsPort) },
      this.dir,
    );
    replica.process = daemon;
    void daemon.exited.then(async (code) => {
      if (replica.process === daemon) replica.process = undefined;
      if (replica.killing || this.#closed) return;
      // It exited on its own: record why, and restart it like a pod.
      const lines = await daemon.logLines();
      const why = lines
        .filter((l) => l.level === 'fatal' || l.level === 'error')
        .slice(-3)
        .map((l) => String(l.msg))
        .join(' | ');
      const stray = (await daemon.strayLines()).slice(-5).join(' | ');
      const atMs = Date.now();
      const duringOutage = this.redisOutages.some((o) => o.fromMs <= atMs && (o.toMs ?? atMs) >= startedAtMs);
      this.unplannedExits.push({
        slot,
        startedAtMs,
        atMs,
        code,
        logPath: daemon.logPath,
        why: why || stray || '(no log line)',
        redisDown: duringOutage && /cannot connect to Redis/.test(why),
      });
      replica.restartTimer = setTimeout(() => this.startReplica(slot), 1_000);
    });
  }

  /** kill -9; resolves once the process is gone. */
  async killReplica(slot: number): Promise<boolean> {
    const replica = this.replicas[slot] as Replica;
    const daemon = replica.process;
    if (!daemon) return false;
    replica.killing = true;
    daemon.kill('SIGKILL');
    await daemon.exited;
    replica.killing = false;
    return true;
  }

  /** Restarts a replica after `delayMs` unless one is running by then. */
  restartLater(slot: number, delayMs: number): void {
    const replica = this.replicas[slot] as Replica;
    clearTimeout(replica.restartTimer);
    replica.restartTimer = setTimeout(() => this.startReplica(slot), delayMs);
  }

  running(): Replica[] {
    return this.replicas.filter((r) => r.process !== undefined);
  }

  /** Every replica running (restarts those that are down, now). */
  ensureAllRunning(): void {
    for (const replica of this.replicas) if (!replica.process) this.startReplica(replica.slot);
  }

  async fileSinkPaths(): Promise<string[]> {
    return (await readdir(this.dir))
      .filter((f) => f.startsWith('events-') && f.endsWith('.ndjson'))
      .map((f) => join(this.dir, f));
  }

  async daemonLogPaths(): Promise<string[]> {
    return (await readdir(this.dir)).filter((f) => f.startsWith('daemon-')).map((f) => join(this.dir, f));
  }

  async close(keep: boolean): Promise<void> {
    this.#closed = true;
    for (const replica of this.replicas) clearTimeout(replica.restartTimer);
    const alive = this.replicas.map((r) => r.process).filter((p): p is DaemonProcess => p !== undefined);
    for (const daemon of alive) daemon.kill('SIGKILL');
    await Promise.all(alive.map((d) => d.exited));
    const pid = this.redis.server.pid;
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone already
      }
    }
    await Promise.allSettled([
      this.sim.close(),
      this.proxy.stop(),
      this.loki.stop(),
      this.es.stop(),
      keep ? this.s3.stop() : this.s3.remove(),
    ]);
    await this.redis.stop();
    if (!keep) await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * Outbox cap: about forty seconds of traffic, so a long sink outage (or several in a row) makes the
 * polls pause (G5), without pausing them so often that the provider faults go unexercised.
 */
function outboxCap(profile: TortureProfile): number {
  const perSecond =
    (profile.stackitProjects * profile.stackitEventsPerMinute +
      profile.cloudscaleProjects * profile.cloudscaleEventsPerMinute) /
    60;
  return Math.max(200, Math.round(perSecond * 40));
}

function configText(c: {
  dir: string;
  redisUrl: string;
  keyPath: string;
  stackitProjects: readonly string[];
  cloudscaleProjects: readonly CloudscaleProject[];
  outboxMaxLength: number;
}): string {
  return `daemon:
  dataDir: ${c.dir}
  redis:
    url: ${c.redisUrl}
  log: { level: debug }
  poll: { concurrency: 4, leaseTtl: 3s, interval: 1s }
  delivery: { batchSize: 200, retryInitial: 50ms, retryMax: 2s, consumerTimeout: 2s }
  outbox: { maxLength: ${c.outboxMaxLength} }
  shutdownTimeout: 10s
providers:
  - name: stackit
    type: stackit
    auditLogUrl: "\${PROVIDER_URL}"
    resourceManagerUrl: "\${SIM_URL}"
    allowInsecureHttp: true
    auth: { serviceAccountKeyFile: ${c.keyPath}, tokenEndpoint: "\${SIM_URL}/token" }
    rateLimit: { requestsPerMinute: 100000, burst: 1000 }
    overlap: ${STACKIT_OVERLAP_MS / 1000}s
    settleLag: ${STACKIT_SETTLE_LAG_MS / 1000}s
    lookback: 10m
    requestTimeout: ${REQUEST_TIMEOUT_MS / 1000}s
    retry: { attempts: 3, initialBackoff: 100ms, maxBackoff: 1s }
  - name: cloudscale
    type: cloudscale
    apiUrl: "\${PROVIDER_URL}"
    allowInsecureHttp: true
    lookback: 30m
    overlap: 5m
    requestTimeout: ${REQUEST_TIMEOUT_MS / 1000}s
    retry: { attempts: 3, initialBackoff: 100ms, maxBackoff: 1s }
scopes:
${c.stackitProjects.map((id) => `  - { provider: stackit, project: ${id} }`).join('\n')}
${c.cloudscaleProjects.map((p) => `  - { provider: cloudscale, project: ${p.name}, auth: { token: "\${${p.env}}" } }`).join('\n')}
sinks:
  - name: file
    type: file
    path: ${join(c.dir, 'events-{instance}.ndjson')}
  - name: loki
    type: loki
    url: "\${LOKI_URL}"
    allowInsecureHttp: true
    tenant: torture
    timeout: ${SINK_TIMEOUT_MS / 1000}s
    batch: { maxEvents: 500, linger: 200ms }
  - name: es
    type: elasticsearch
    url: "\${ES_URL}"
    allowInsecureHttp: true
    auth: { apiKey: "\${ES_KEY}" }
    manageTemplate: true
    timeout: ${SINK_TIMEOUT_MS / 1000}s
    batch: { maxEvents: 500, linger: 200ms }
  - name: s3
    type: s3
    bucket: "\${S3_BUCKET}"
    prefix: ${S3_PREFIX}
    endpoint: "\${S3_URL}"
    allowInsecureHttp: true
    auth: { accessKeyId: "\${S3_KEY}", secretAccessKey: "\${S3_SECRET}" }
    timeout: ${SINK_TIMEOUT_MS / 1000}s
    batch: { maxEvents: 1000, linger: 3s }
`;
}

/**
 * A free port below the kernel's ephemeral range, so no outgoing connection takes it while its replica
 * is down between a kill and a restart.
 */
async function stablePort(taken: readonly number[]): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (taken.includes(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port for a replica’s metrics server');
}
