import type { Logger } from 'pino';
import type { Metrics } from '../observability/metrics.ts';
import type { RedisKeys } from '../pipeline/keys.ts';
import { PushCommitter } from '../pipeline/push-commit.ts';
import { PushReceiver } from '../pipeline/push-receiver.ts';
import type { RedisClient } from '../redis/client.ts';
import { sourceModules } from '../sources/registry.ts';
import type { ProviderInstance } from '../sources/source.ts';
import { fingerprint } from './fingerprint.ts';

export interface PushSetDeps {
  readonly redis: RedisClient;
  readonly keys: RedisKeys;
  readonly sinks: () => readonly string[];
  readonly maxOutbox: number;
  readonly metrics: Metrics;
  readonly log: Logger;
}

/**
 * The OTLP receivers of the configured push providers (every replica serves them). A reload closes the
 * receivers of removed or changed providers before it starts the new ones, so a changed port is free.
 */
export class PushReceiverSet {
  readonly #deps: PushSetDeps;
  readonly #committer: PushCommitter;
  readonly #running = new Map<string, { print: string; receiver: PushReceiver }>();

  constructor(deps: PushSetDeps) {
    this.#deps = deps;
    this.#committer = new PushCommitter(deps.redis, deps.keys);
  }

  async apply(providers: readonly ProviderInstance[]): Promise<void> {
    const wanted = new Map<string, ProviderInstance>();
    for (const provider of providers) {
      if (sourceModules.get(provider.type)?.push) wanted.set(provider.name, provider);
    }
    for (const [name, running] of this.#running) {
      const next = wanted.get(name);
      if (next && fingerprint({ type: next.type, settings: next.settings }) === running.print) continue;
      await running.receiver.close();
      this.#running.delete(name);
    }
    for (const [name, provider] of wanted) {
      if (this.#running.has(name)) continue;
      const push = sourceModules.get(provider.type)?.push;
      if (!push) continue;
      const receiver = new PushReceiver({
        provider,
        push,
        redis: this.#deps.redis,
        committer: this.#committer,
        sinks: this.#deps.sinks,
        maxOutbox: this.#deps.maxOutbox,
        metrics: this.#deps.metrics,
        log: this.#deps.log,
      });
      await receiver.start();
      this.#running.set(name, {
        print: fingerprint({ type: provider.type, settings: provider.settings }),
        receiver,
      });
    }
  }

  /** Bound ports by provider name (tests, logs). */
  ports(): Record<string, { http: number; grpc?: number }> {
    const out: Record<string, { http: number; grpc?: number }> = {};
    for (const [name, { receiver }] of this.#running) if (receiver.ports) out[name] = receiver.ports;
    return out;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#running.values()].map(({ receiver }) => receiver.close()));
    this.#running.clear();
  }
}
