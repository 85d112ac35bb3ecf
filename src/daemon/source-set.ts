import type { Logger } from 'pino';
import type { RateBudgets } from '../http/rate-budget.ts';
import type { Metrics } from '../observability/metrics.ts';
import { sourceModules } from '../sources/registry.ts';
import type { ProviderInstance, Source } from '../sources/source.ts';
import { fingerprint } from './fingerprint.ts';

export interface SourceSetDeps {
  readonly log: Logger;
  readonly instanceId: string;
  readonly rateBudgets: RateBudgets;
  readonly metrics: Metrics;
  /** How long a replaced or removed source stays open for polls still using it. */
  readonly retireAfterMs: number;
}

export interface SetChange {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly replaced: readonly string[];
}

/**
 * The sources of the configured providers, by provider name. `map` is the live map pollers read at the
 * start of each poll; applying a new config swaps entries in place, and a source that was replaced or
 * removed is closed only after polls that already hold it have had time to finish.
 */
export class SourceSet {
  readonly map = new Map<string, Source>();
  readonly #fingerprints = new Map<string, string>();
  readonly #retiring = new Set<Promise<void>>();
  readonly #deps: SourceSetDeps;

  constructor(deps: SourceSetDeps) {
    this.#deps = deps;
  }

  apply(providers: readonly ProviderInstance[]): SetChange {
    const wanted = new Map(providers.map((p) => [p.name, p]));
    const added: string[] = [];
    const replaced: string[] = [];
    const removed: string[] = [];
    for (const [name, provider] of wanted) {
      const print = fingerprint({ type: provider.type, settings: provider.settings });
      const current = this.map.get(name);
      if (current && this.#fingerprints.get(name) === print) continue;
      this.map.set(name, this.#create(provider));
      this.#fingerprints.set(name, print);
      if (current) {
        this.#retire(current);
        replaced.push(name);
      } else added.push(name);
    }
    for (const [name, source] of this.map) {
      if (wanted.has(name)) continue;
      this.map.delete(name);
      this.#fingerprints.delete(name);
      this.#retire(source);
      removed.push(name);
    }
    return { added, removed, replaced };
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.map.values()].map((s) => s.close()));
    await Promise.allSettled(this.#retiring);
  }

  #create(provider: ProviderInstance): Source {
    const module = sourceModules.get(provider.type);
    if (!module) throw new Error(`unknown provider type "${provider.type}"`);
    const { metrics } = this.#deps;
    return module.create(provider, {
      log: this.#deps.log.child({ provider: provider.name }),
      instanceId: this.#deps.instanceId,
      rateBudgets: this.#deps.rateBudgets,
      onRequest: (sample) => {
        metrics.providerRequests.inc({ provider: sample.provider, api: sample.api, status: sample.status });
        metrics.providerRequestSeconds.observe(
          { provider: sample.provider, api: sample.api },
          sample.seconds,
        );
      },
    });
  }

  #retire(source: Source): void {
    const done = new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        source.close().then(resolve, resolve);
      }, this.#deps.retireAfterMs);
      timer.unref();
    });
    this.#retiring.add(done);
    void done.then(() => this.#retiring.delete(done));
  }
}
