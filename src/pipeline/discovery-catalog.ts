import type { ScopeSpec } from '../config/types.ts';
import { type DiscoveryPlan, type PollScope, type Source, scopeKey } from '../sources/source.ts';
import { type DiscoveredEntry, type DiscoveryStore, entryState, refOf } from './discovery-store.ts';

/**
 * The scopes to poll: the configured ones, plus what discovery found under configured roots (read from
 * Redis, so every replica agrees whatever it discovered itself). A discovered scope is polled with its
 * root's provider, interval, sinks and timing, as this process's config says; a scope both configured
 * and discovered is the configured one.
 */
export class ScopeCatalog {
  #configured: ReadonlyMap<string, ScopeSpec>;
  readonly #sources: ReadonlyMap<string, Source>;
  readonly #store: DiscoveryStore;

  constructor(configured: readonly ScopeSpec[], sources: ReadonlyMap<string, Source>, store: DiscoveryStore) {
    this.#configured = new Map(configured.map((scope) => [scope.key, scope]));
    this.#sources = sources;
    this.#store = store;
  }

  /** A reloaded config's scopes; discovered scopes follow their roots' new settings from now on. */
  setConfigured(configured: readonly ScopeSpec[]): void {
    this.#configured = new Map(configured.map((scope) => [scope.key, scope]));
  }

  configured(): ScopeSpec[] {
    return [...this.#configured.values()];
  }

  /** Configured scopes that discover others, with their plans. */
  roots(): Array<{ scope: ScopeSpec; plan: DiscoveryPlan }> {
    const out: Array<{ scope: ScopeSpec; plan: DiscoveryPlan }> = [];
    for (const scope of this.#configured.values()) {
      const plan = this.#sources.get(scope.provider)?.discovery?.plan(pollScope(scope));
      if (plan !== undefined) out.push({ scope, plan });
    }
    return out;
  }

  isConfigured(key: string): boolean {
    return this.#configured.has(key);
  }

  /** The scope a poll job names, or undefined when it is not (or no longer) to be polled. */
  async resolve(key: string): Promise<ScopeSpec | undefined> {
    const configured = this.#configured.get(key);
    if (configured !== undefined) return configured;
    const entry = await this.#store.entry(key);
    return entry === undefined ? undefined : this.derive(key, entry);
  }

  /** Every scope to schedule. Throws if Redis cannot be read: a partial list must not unschedule anything. */
  async all(): Promise<ScopeSpec[]> {
    const scopes = this.configured();
    for (const [key, entry] of await this.#store.entries()) {
      if (this.#configured.has(key)) continue;
      const spec = this.derive(key, entry);
      if (spec !== undefined) scopes.push(spec);
    }
    return scopes;
  }

  /** The spec of a discovered scope that is still polled (active or missing), if its root is configured here. */
  derive(key: string, entry: DiscoveredEntry): ScopeSpec | undefined {
    if (entryState(entry) === 'gone') return undefined;
    const root = this.#configured.get(entry.root);
    if (root === undefined) return undefined;
    const discovery = this.#sources.get(root.provider)?.discovery;
    if (discovery?.plan(pollScope(root)) === undefined) return undefined;
    const ref = refOf(entry);
    if (scopeKey(root.providerType, ref) !== key) return undefined;
    return {
      key,
      provider: root.provider,
      providerType: root.providerType,
      ref,
      intervalMs: root.intervalMs,
      sinks: root.sinks,
      settings: discovery.childSettings(root.settings, ref),
      discoveredBy: root.key,
    };
  }
}

export function pollScope(scope: ScopeSpec): PollScope {
  return { key: scope.key, provider: scope.provider, ref: scope.ref, settings: scope.settings };
}
