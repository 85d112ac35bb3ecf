/**
 * The provider simulator: local HTTP servers for the cloud audit-log APIs the shipper polls, faithful
 * to their limits and faults, with ground truth for test oracles. Used by `auditlog-shipper simulate`,
 * by the daemon's embedded default mode, by tests and by the benchmark.
 *
 * ```ts
 * const sim = await startSimulator({ seed: 1, stackit: { scopes: [{ kind: 'project', id, eventsPerMinute: 30 }] } });
 * // providers: [{ type: stackit, auditLogUrl: sim.url, auth: { token: sim.token } }]
 * sim.truth.events({ scope: { kind: 'project', id }, fromMs, toMs, visibleBy });
 * await sim.close();
 * ```
 */
import { SimClock } from './clock.ts';
import { type CloudscaleOptions, CloudscaleProjectLogs } from './cloudscale/project-logs.ts';
import { controlRoutes } from './control.ts';
import { type BudgetOptions, type Fault, FaultInjector, type FaultRates, RateBudget } from './faults.ts';
import { Observer, type RequestRecord, type SimStats } from './observe.ts';
import { hash128, mixWords, uuidFromWords } from './random.ts';
import { type Route, type SimModule, startSimServer } from './server.ts';
import { StackitAuditLog, type StackitOptions, type StackitScopeKind } from './stackit/audit-log.ts';
import { StackitIdentity } from './stackit/identity.ts';
import { StackitResourceManager } from './stackit/resource-manager.ts';
import { StackitTelemetry } from './stackit/telemetry.ts';
import type { Truth } from './truth.ts';

export type { SimClock } from './clock.ts';
export type { BackdateOptions, CommitDelayOptions } from './cloudscale/log.ts';
export type {
  CloudscaleOptions,
  CloudscaleProjectOptions,
  CloudscaleTruthEntry,
  CloudscaleTruthQuery,
} from './cloudscale/project-logs.ts';
export { CLOUDSCALE_PAGE_SIZE, CloudscaleProjectLogs } from './cloudscale/project-logs.ts';
export type { BudgetOptions, Fault, FaultControl, FaultRates, FaultStatus, MalformedKind } from './faults.ts';
export { FAULT_STATUSES, MALFORMED_KINDS } from './faults.ts';
export type { RequestRecord, SimStats } from './observe.ts';
export { instanceFromUserAgent } from './observe.ts';
export type { Route, RouteContext, SimModule, SimReply } from './server.ts';
export type { StackitOptions, StackitScopeKind, StackitScopeOptions } from './stackit/audit-log.ts';
export {
  STACKIT_DEFAULT_LIMIT,
  STACKIT_MAX_LIMIT,
  STACKIT_MAX_PERIOD_MS,
  STACKIT_RETENTION_MS,
  StackitAuditLog,
} from './stackit/audit-log.ts';
export { AUDIT_SCOPE_NAME, auditLogRecord, auditLogsRequest } from './stackit/audit-records.ts';
export type { IdentityStats, ServiceAccountKeyDocument, WorkloadIssuer } from './stackit/identity.ts';
export { STACKIT_SIM_AUDIENCE, STACKIT_WIF_AUDIENCE, StackitIdentity } from './stackit/identity.ts';
export type { AddContainer, LifecycleState, SimContainer } from './stackit/resource-manager.ts';
export { RM_DEFAULT_LIMIT, RM_MAX_LIMIT, StackitResourceManager } from './stackit/resource-manager.ts';
export type { RouterPushLoopOptions } from './stackit/router-loop.ts';
export { RouterPushLoop } from './stackit/router-loop.ts';
export type { PusherOptions, PushProtocol, PushReport, PushTarget } from './stackit/router-pusher.ts';
export { RouterPusher, routerFeed } from './stackit/router-pusher.ts';
export type {
  LinkTruth,
  SimAccessToken,
  SimDestination,
  SimLinkLevel,
  SimLinkStatus,
  SimRouter,
} from './stackit/telemetry.ts';
export { StackitTelemetry } from './stackit/telemetry.ts';
export type { DelayOptions, ScopeRef } from './traffic.ts';
export type { ServedScope, Truth, TruthEvent, TruthQuery } from './truth.ts';

export interface SimulatorOptions {
  /** Always loopback unless you mean it (default 127.0.0.1). */
  readonly host?: string | undefined;
  /** 0 picks a free port (default 0). */
  readonly port?: number | undefined;
  /** Seeds traffic, payloads, cursor secret and fault draws (default 1). */
  readonly seed?: number | undefined;
  /** Client-side clock, epoch ms (default `Date.now`). */
  readonly now?: (() => number) | undefined;
  /** The provider's clock runs this far ahead of `now` (negative: behind). */
  readonly skewMs?: number | undefined;
  /** The STACKIT Audit Log API (default: served with no scopes). */
  readonly stackit?: StackitOptions | undefined;
  /** The cloudscale.ch project-logs API (default: served with no projects). */
  readonly cloudscale?: CloudscaleOptions | undefined;
  /** Request budget per bearer token for provider-API calls (default unlimited). */
  readonly budget?: BudgetOptions | undefined;
  /** Whether 429s carry `Retry-After` (default true). */
  readonly retryAfterHeader?: boolean | undefined;
  /** Fault probabilities per provider-API request (default none). */
  readonly faults?: FaultRates | undefined;
  /** Size of the request-log ring (default 10,000). */
  readonly requestLogSize?: number | undefined;
  /** Events kept in the generated-bucket LRU (default 50,000). */
  readonly cacheEvents?: number | undefined;
}

export interface FaultsApi {
  /** Replaces the fault rates. */
  set(rates: FaultRates): void;
  /** Queues faults for the next provider-API requests, one each, in order (before any rate applies). */
  enqueue(...faults: Fault[]): void;
  /** Empties the queue and zeroes every rate. */
  clear(): void;
  /** Faults still queued. */
  pending(): Fault[];
  rates(): FaultRates;
}

export interface Simulator {
  /** Base URL, e.g. `http://127.0.0.1:41234` (the STACKIT `auditLogUrl`). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly seed: number;
  /** The static bearer token the STACKIT APIs accept. */
  readonly token: string;
  /** The service-account token endpoint (`auth.tokenEndpoint`); keys come from `identity.createKey()`. */
  readonly tokenUrl: string;
  /** The provider clock (`simNow()`, settable `skewMs`). */
  readonly clock: SimClock;
  /** Ground truth of the STACKIT scopes. */
  readonly truth: Truth;
  readonly faults: FaultsApi;
  readonly budget: {
    /** Replaces the budget (undefined: unlimited); buckets start full. */
    set(options: BudgetOptions | undefined): void;
    readonly options: BudgetOptions | undefined;
  };
  /** The STACKIT module: `addScope`, `removeScope`, `traffic.setWindow`, `order`, `token`… */
  readonly stackit: StackitAuditLog;
  /** The cloudscale module: projects and tokens, `truth()`, `setMaintenance`, `rejectCursors`, `linkOrigin`… */
  readonly cloudscale: CloudscaleProjectLogs;
  /** Service accounts: keys, the token endpoint, issued tokens (`createKey`, `deleteKey`, `revokeAccessTokens`). */
  readonly identity: StackitIdentity;
  /** Faults of the token endpoint only. */
  readonly identityFaults: FaultsApi;
  /** The Resource Manager's organization tree (`addOrganization`, `addFolder`, `addProject`, `remove`…). */
  readonly resourceManager: StackitResourceManager;
  /** Faults of the Resource Manager only. */
  readonly resourceManagerFaults: FaultsApi;
  /** The Telemetry Link and Router management APIs: routers, destinations, tokens, links, ground truth. */
  readonly telemetry: StackitTelemetry;
  /** Faults of the Telemetry Link and Router APIs only. */
  readonly telemetryFaults: FaultsApi;
  /** Whether 429s carry `Retry-After`; settable at runtime. */
  retryAfterHeader: boolean;
  /** Provider-API requests, oldest first, at most the last `requestLogSize` (a fresh array per read). */
  readonly requestLog: readonly RequestRecord[];
  stats(): SimStats;
  /** The most provider-API requests ever in flight at once for one scope. */
  maxConcurrentPerScope(): number;
  /** Clears the request log, the stats and the concurrency maximum. */
  resetObservations(): void;
  /** Stops traffic: no events with an event time at or after `atMs` (default: provider now). */
  stopTraffic(atMs?: number): void;
  close(): Promise<void>;
}

export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const seed = options.seed ?? 1;
  const clock = new SimClock(options.now ?? Date.now, options.skewMs ?? 0);
  const faults = new FaultInjector(seed, options.faults);
  const budget = new RateBudget(() => clock.clientNow(), options.budget);
  const observer = new Observer(options.requestLogSize ?? 10_000);
  let retryAfterHeader = options.retryAfterHeader ?? true;

  const identityFaults = new FaultInjector(seed + 1);
  const identity = new StackitIdentity(
    { staticToken: options.stackit?.token, accessTokenTtlMs: options.stackit?.accessTokenTtlMs },
    { clock, faults: identityFaults },
  );
  const stackit = new StackitAuditLog(options.stackit ?? {}, {
    seed,
    clock,
    faults,
    budget,
    identity,
    retryAfterHeader: () => retryAfterHeader,
    cacheEvents: options.cacheEvents,
  });
  const cloudscale = new CloudscaleProjectLogs(options.cloudscale ?? {}, {
    seed,
    clock,
    faults,
    budget,
    retryAfterHeader: () => retryAfterHeader,
  });
  const rmFaults = new FaultInjector(seed + 2);
  const resourceManager = new StackitResourceManager({
    clock,
    identity,
    auditLog: stackit,
    faults: rmFaults,
  });
  const telemetryFaults = new FaultInjector(seed + 3);
  const telemetry = new StackitTelemetry({ clock, identity, resourceManager, faults: telemetryFaults });
  const modules: SimModule[] = [stackit, identity, resourceManager, telemetry, cloudscale];
  const routes: Route[] = [
    ...controlRoutes({ clock, faults, budget, observer }),
    ...modules.flatMap((m) => m.routes),
  ];

  const server = await startSimServer({
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 0,
    routes,
    observer,
  });
  identity.baseUrl = server.url;

  return {
    url: server.url,
    host: server.host,
    port: server.port,
    seed,
    get token() {
      return stackit.token;
    },
    tokenUrl: identity.tokenUrl,
    clock,
    truth: stackit.truth,
    faults: {
      set: (rates) => faults.set(rates),
      enqueue: (...list) => faults.enqueue(...list),
      clear: () => faults.clear(),
      pending: () => faults.pending(),
      rates: () => faults.rates(),
    },
    budget: {
      set: (value) => budget.set(value),
      get options() {
        return budget.options;
      },
    },
    stackit,
    cloudscale,
    identity,
    identityFaults: faultsApi(identityFaults),
    resourceManager,
    resourceManagerFaults: faultsApi(rmFaults),
    telemetry,
    telemetryFaults: faultsApi(telemetryFaults),
    get retryAfterHeader() {
      return retryAfterHeader;
    },
    set retryAfterHeader(value: boolean) {
      retryAfterHeader = value;
    },
    get requestLog() {
      return observer.records();
    },
    stats: () => observer.stats(),
    maxConcurrentPerScope: () => observer.maxConcurrentPerScope(),
    resetObservations: () => observer.reset(),
    stopTraffic: (atMs) => stackit.traffic.setWindow({ endMs: atMs ?? clock.simNow() }),
    close: () => server.close(),
  };
}

function faultsApi(faults: FaultInjector): FaultsApi {
  return {
    set: (rates) => faults.set(rates),
    enqueue: (...list) => faults.enqueue(...list),
    clear: () => faults.clear(),
    pending: () => faults.pending(),
    rates: () => faults.rates(),
  };
}

/**
 * `count` deterministic UUIDs for simulated scopes (the same seed always gives the same ids; different
 * kinds give different ids). For `simulate --scopes N` and the daemon's embedded default.
 */
export function makeScopeIds(
  seed: number,
  count: number,
  kind: StackitScopeKind | string = 'project',
): string[] {
  const base = hash128(`auditlog-shipper simulator scopes|${seed}|${kind}`);
  return Array.from({ length: count }, (_, i) => uuidFromWords(mixWords(base, i, 7)));
}
