import type { Logger } from 'pino';
import type { ShipperConfig } from '../config/types.ts';
import type { StackitProviderSettings, StackitScopeSettings } from '../sources/stackit/config.ts';
import { LinkReconciler } from '../sources/stackit/telemetry/reconciler.ts';
import { fingerprint } from './fingerprint.ts';

export interface LinkReconcilerSetDeps {
  readonly instanceId: string;
  readonly isLeader: () => Promise<boolean>;
  readonly log: Logger;
}

/**
 * One STACKIT Telemetry Link reconciler per provider whose `telemetry.reconcile` is a duration (none by
 * default). Follows config reloads: a provider added, changed or removed starts, restarts or stops
 * its reconciler; scopes are read from the config in effect at each round.
 */
export class LinkReconcilerSet {
  readonly #deps: LinkReconcilerSetDeps;
  readonly #running = new Map<string, { print: string; reconciler: LinkReconciler }>();
  #config: ShipperConfig | undefined;

  constructor(deps: LinkReconcilerSetDeps) {
    this.#deps = deps;
  }

  async apply(config: ShipperConfig): Promise<void> {
    this.#config = config;
    const wanted = new Map<string, StackitProviderSettings>();
    for (const provider of config.providers) {
      const settings = provider.settings as StackitProviderSettings;
      if (provider.type === 'stackit' && settings.telemetry?.reconcile) wanted.set(provider.name, settings);
    }
    for (const [name, entry] of this.#running) {
      const settings = wanted.get(name);
      if (settings && fingerprint(settings) === entry.print) continue;
      this.#running.delete(name);
      await entry.reconciler.stop();
    }
    for (const [name, settings] of wanted) {
      if (this.#running.has(name)) continue;
      const reconciler = new LinkReconciler({
        provider: name,
        settings,
        scopes: () => this.#scopesOf(name),
        instanceId: this.#deps.instanceId,
        isLeader: this.#deps.isLeader,
        intervalMs: settings.telemetry?.reconcile || 3_600_000,
        log: this.#deps.log.child({ provider: name }),
      });
      this.#running.set(name, { print: fingerprint(settings), reconciler });
      reconciler.start();
    }
  }

  async stop(): Promise<void> {
    const all = [...this.#running.values()];
    this.#running.clear();
    await Promise.allSettled(all.map((entry) => entry.reconciler.stop()));
  }

  #scopesOf(provider: string): StackitScopeSettings[] {
    return (this.#config?.scopes ?? [])
      .filter((s) => s.provider === provider && s.discoveredBy === undefined)
      .map((s) => s.settings as StackitScopeSettings);
  }
}
