import type { Logger } from 'pino';
import { ProviderError } from '../../errors.ts';
import type { StackitProviderSettings, StackitScopeSettings } from '../config.ts';
import { openTelemetryClients, type TelemetryClients } from './clients.ts';
import { type ApplyOutcome, applyLinks, linkLevels, planLinks } from './links.ts';

export interface LinkReconcilerOptions {
  readonly provider: string;
  readonly settings: StackitProviderSettings;
  /** The provider's configured scopes (discovery under them is walked again each round). */
  readonly scopes: () => readonly StackitScopeSettings[];
  readonly instanceId: string;
  /** Only the leader reconciles: two replicas creating the same router at once would make two. */
  readonly isLeader: () => Promise<boolean>;
  readonly intervalMs: number;
  readonly log: Logger;
  /** How often to check whether a round is due (default 30 s). */
  readonly tickMs?: number;
  readonly now?: () => number;
}

/**
 * `stackit links apply` on an interval, inside the daemon (off by default: `telemetry.reconcile`). Each
 * due round on the leader plans; only a plan with something to create, update or repair is applied, so
 * a converged setup costs reads only. Failed and foreign links are logged as warnings with their
 * reason; a round that cannot plan (an API down) is logged and retried at the next interval.
 */
export class LinkReconciler {
  readonly #o: LinkReconcilerOptions;
  readonly #now: () => number;
  readonly #clients: TelemetryClients;
  readonly #stop = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #lastRoundMs: number | undefined;

  constructor(options: LinkReconcilerOptions) {
    const clients = openTelemetryClients(options.provider, options.settings, options.instanceId, options.log);
    if (clients === undefined) throw new Error(`provider "${options.provider}" has no telemetry section`);
    this.#o = options;
    this.#clients = clients;
    this.#now = options.now ?? Date.now;
  }

  start(): void {
    this.#timer = setInterval(() => void this.tick(), this.#o.tickMs ?? 30_000);
    this.#timer.unref();
    void this.tick();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#stop.abort(new Error('shutdown'));
    await this.#running;
    await this.#clients.close();
  }

  /** One round if due and this process leads; concurrent calls share it. Never throws. */
  tick(): Promise<void> {
    this.#running ??= this.#round()
      .catch((error: unknown) => {
        if (this.#stop.signal.aborted) return;
        this.#o.log.error(
          { provider: this.#o.provider, reason: error instanceof ProviderError ? error.reason : 'internal' },
          `telemetry link reconciliation of provider "${this.#o.provider}" failed, retried in ${Math.round(this.#o.intervalMs / 1000)} s: ${(error as Error).message}`,
        );
      })
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
  }

  async #round(): Promise<void> {
    const now = this.#now();
    if (this.#lastRoundMs !== undefined && now - this.#lastRoundMs < this.#o.intervalMs) return;
    if (!(await this.#o.isLeader())) return;
    this.#lastRoundMs = now;
    const { log, provider } = this.#o;
    const deps = { provider, ...this.#clients, signal: this.#stop.signal, log };
    const plan = await planLinks(await linkLevels(this.#o.scopes(), deps), deps);
    const items = plan.regions.flatMap((r) => r.items);
    const changes = items.filter(
      (i) => i.action === 'create' || i.action === 'update' || i.action === 'repair',
    );
    const outcomes: ApplyOutcome[] =
      changes.length > 0 || items.some((i) => i.action === 'error') ? await applyLinks(plan, deps) : [];
    for (const o of outcomes) {
      if (o.result === 'created' || o.result === 'updated' || o.result === 'repaired') {
        log.info(
          { provider, region: o.region, kind: o.kind, result: o.result },
          `telemetry ${o.kind} ${o.target}: ${o.result}`,
        );
      }
    }
    const problems = [
      ...outcomes.filter((o) => o.result === 'failed'),
      ...(outcomes.length > 0
        ? outcomes.filter((o) => o.result === 'foreign')
        : items.filter((i) => i.action === 'foreign')),
    ];
    for (const p of problems) {
      log.warn({ provider, region: p.region, kind: p.kind }, `telemetry ${p.kind} ${p.target}: ${p.detail}`);
    }
  }
}
