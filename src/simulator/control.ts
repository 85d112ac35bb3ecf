/**
 * Provider-neutral `/_sim/*` control routes: faults, budget, clock skew, stats and the request log.
 * (Provider modules add their own, e.g. STACKIT's `/_sim/truth`.) Unauthenticated; the simulator binds
 * to loopback.
 */
import type { SimClock } from './clock.ts';
import type { BudgetOptions, FaultControl, FaultInjector, RateBudget } from './faults.ts';
import type { Observer } from './observe.ts';
import type { Route, RouteContext, SimResponse } from './server.ts';

export interface ControlDeps {
  readonly clock: SimClock;
  readonly faults: FaultInjector;
  readonly budget: RateBudget;
  readonly observer: Observer;
}

function reply(status: number, value: unknown): SimResponse {
  return { status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(value) };
}

function parseJson(ctx: RouteContext): unknown {
  if (ctx.body.trim() === '') return {};
  return JSON.parse(ctx.body) as unknown;
}

function guarded(handle: (ctx: RouteContext) => SimResponse): (ctx: RouteContext) => SimResponse {
  return (ctx) => {
    try {
      return handle(ctx);
    } catch (error) {
      return reply(400, { message: error instanceof Error ? error.message : String(error) });
    }
  };
}

export function controlRoutes(deps: ControlDeps): Route[] {
  const { clock, faults, budget, observer } = deps;
  const faultState = (): unknown => ({
    rates: faults.rates(),
    queue: faults.pending(),
    injected: faults.injected,
  });
  return [
    {
      name: 'sim.faults',
      methods: ['GET', 'PUT', 'DELETE'],
      path: /^\/_sim\/faults$/,
      handle: guarded((ctx) => {
        if (ctx.method === 'DELETE') faults.clear();
        if (ctx.method === 'PUT') faults.control(parseJson(ctx) as FaultControl);
        return reply(200, faultState());
      }),
    },
    {
      name: 'sim.budget',
      methods: ['GET', 'PUT'],
      path: /^\/_sim\/budget$/,
      handle: guarded((ctx) => {
        if (ctx.method === 'PUT') {
          const doc = parseJson(ctx) as { budget?: BudgetOptions | null };
          budget.set(doc.budget ?? undefined);
        }
        return reply(200, { budget: budget.options ?? null });
      }),
    },
    {
      name: 'sim.clock',
      methods: ['GET', 'PUT'],
      path: /^\/_sim\/clock$/,
      handle: guarded((ctx) => {
        if (ctx.method === 'PUT') {
          const doc = parseJson(ctx) as { skewMs?: unknown };
          if (typeof doc.skewMs !== 'number') throw new Error('body must be {"skewMs": number}');
          clock.skewMs = doc.skewMs;
        }
        return reply(200, { skewMs: clock.skewMs, simNowMs: clock.simNow(), clientNowMs: clock.clientNow() });
      }),
    },
    {
      name: 'sim.stats',
      methods: ['GET', 'DELETE'],
      path: /^\/_sim\/stats$/,
      handle: (ctx) => {
        if (ctx.method === 'DELETE') observer.reset();
        return reply(200, { ...observer.stats(), maxConcurrentPerScope: observer.maxConcurrentPerScope() });
      },
    },
    {
      name: 'sim.requests',
      methods: ['GET'],
      path: /^\/_sim\/requests$/,
      handle: (ctx) => {
        const last = Number(ctx.url.searchParams.get('last') ?? 'NaN');
        const records = observer.records();
        return reply(
          200,
          Number.isInteger(last) && last >= 0 ? records.slice(records.length - last) : records,
        );
      },
    },
  ];
}
