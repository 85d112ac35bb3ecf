import type { Logger } from 'pino';
import type { DaemonSettings } from '../config/types.ts';
import type { Metrics } from '../observability/metrics.ts';
import { DeliveryWorker } from '../pipeline/delivery-worker.ts';
import type { RedisKeys } from '../pipeline/keys.ts';
import type { OutboxMonitor } from '../pipeline/outbox.ts';
import type { RedisClient } from '../redis/client.ts';
import { sinkModules } from '../sinks/registry.ts';
import type { Sink, SinkInstance } from '../sinks/sink.ts';
import { fingerprint } from './fingerprint.ts';
import type { SetChange } from './source-set.ts';

export interface SinkSetDeps {
  readonly redis: RedisClient;
  /** A new connection of the daemon's (delivery workers block on theirs). */
  readonly duplicate: (role: string) => RedisClient;
  readonly keys: RedisKeys;
  readonly outbox: OutboxMonitor;
  readonly settings: DaemonSettings;
  readonly metrics: Metrics;
  readonly log: Logger;
}

interface Running {
  readonly sink: Sink;
  readonly worker: DeliveryWorker;
  readonly print: string;
}

/**
 * The configured sinks, each with its delivery worker. Applying a new config starts sinks that were
 * added, stops those removed (their outbox stays in Redis: nothing queued for them is lost, and it is
 * delivered if the sink comes back) and restarts those whose settings changed, where the new worker
 * picks up exactly where the old one stopped.
 */
export class SinkSet {
  readonly #running = new Map<string, Running>();
  readonly #deps: SinkSetDeps;

  constructor(deps: SinkSetDeps) {
    this.#deps = deps;
  }

  names(): string[] {
    return [...this.#running.keys()];
  }

  async apply(instances: readonly SinkInstance[], stopDeadlineMs: number): Promise<SetChange> {
    const wanted = new Map(instances.map((i) => [i.name, i]));
    const added: string[] = [];
    const replaced: string[] = [];
    const removed: string[] = [];
    for (const [name, running] of this.#running) {
      const next = wanted.get(name);
      if (next && fingerprint({ type: next.type, settings: next.settings }) === running.print) continue;
      await this.#stopOne(name, running, stopDeadlineMs);
      if (next) replaced.push(name);
      else {
        removed.push(name);
        const waiting = await this.#deps.redis.xlen(this.#deps.keys.outbox(name)).catch(() => undefined);
        if (waiting) {
          this.#deps.log.warn(
            { sink: name, waiting },
            `sink "${name}" left the config with ${waiting} events still waiting for it; they stay in Redis and are delivered if it comes back`,
          );
        }
      }
    }
    for (const [name, instance] of wanted) {
      if (this.#running.has(name)) continue;
      await this.#startOne(instance);
      if (!replaced.includes(name)) added.push(name);
    }
    return { added, removed, replaced };
  }

  /** Creates every running sink's outbox stream and consumer group where missing (after Redis lost them). */
  async ensureGroups(): Promise<void> {
    for (const name of this.#running.keys()) await this.#deps.outbox.ensureGroup(name);
  }

  /** Stops every delivery worker (each finishes or abandons its batch by the deadline), then closes the sinks. */
  async stop(deadlineMs: number): Promise<void> {
    await Promise.all([...this.#running].map(([name, running]) => this.#stopOne(name, running, deadlineMs)));
  }

  async #startOne(instance: SinkInstance): Promise<void> {
    const { duplicate, keys, outbox, settings, metrics, log } = this.#deps;
    const module = sinkModules.get(instance.type);
    if (!module) throw new Error(`unknown sink type "${instance.type}"`);
    const sink = module.create(instance, {
      log: log.child({ sink: instance.name }),
      instanceId: settings.instanceId,
      onRequest: ({ operation, status, seconds }) => {
        metrics.sinkRequests.inc({ sink: instance.name, operation, status });
        metrics.sinkRequestSeconds.observe({ sink: instance.name, operation }, seconds);
      },
    });
    await sink.start();
    await outbox.ensureGroup(sink.name);
    const worker = new DeliveryWorker({
      sink,
      redis: duplicate(`delivery:${sink.name}`),
      keys,
      instanceId: settings.instanceId,
      batchSize: settings.delivery.batchSize,
      retry: { initialMs: settings.delivery.retryInitialMs, maxMs: settings.delivery.retryMaxMs },
      consumerTimeoutMs: settings.delivery.consumerTimeoutMs,
      metrics,
      log: log.child({ sink: sink.name }),
    });
    await worker.start();
    this.#running.set(instance.name, {
      sink,
      worker,
      print: fingerprint({ type: instance.type, settings: instance.settings }),
    });
  }

  async #stopOne(name: string, running: Running, deadlineMs: number): Promise<void> {
    this.#running.delete(name);
    await running.worker.stop(deadlineMs);
    await running.sink
      .close()
      .catch((error: unknown) => this.#deps.log.warn({ err: error }, `closing sink ${name} failed`));
  }
}
