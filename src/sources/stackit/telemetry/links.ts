/**
 * `stackit links plan|apply`: converge STACKIT's Telemetry Router setup on what the config asks for. In
 * each configured region: one router in `routerProject`, its OpenTelemetry destination (the receiver's
 * URL and credential), and a Telemetry Link for every organization, folder and project the provider's
 * scopes name or discover (links do not inherit, so every level needs its own).
 *
 * Ownership: everything the shipper creates carries the marker `managed by auditlog-shipper` in its
 * description. Only marked things are ever changed; a link someone else made at a level is reported and
 * left alone, and nothing is ever deleted. `apply` changes only what `plan` shows, so a second apply
 * changes nothing.
 */
import { scryptSync } from 'node:crypto';
import type { Logger } from 'pino';
import { ProviderError } from '../../errors.ts';
import type { StackitScopeSettings, TelemetryDestination, TelemetrySettings } from '../config.ts';
import { walkHierarchy } from '../discovery.ts';
import type { ResourceManagerClient } from '../resource-manager.ts';
import { describeLink, type LinkTarget, type TelemetryLinkClient } from './link-client.ts';
import type { RouterLocation, TelemetryRouterClient } from './router-client.ts';
import type {
  Destination,
  LinkLevel,
  OpenTelemetryDestinationConfig,
  TelemetryLink,
  TelemetryRegion,
  TelemetryRouter,
} from './schemas.ts';

export const MARKER = 'managed by auditlog-shipper';
/** Link reads and writes in flight at once (an organization may have hundreds of projects). */
const CONCURRENCY = 4;

export interface LinkLevelRef {
  readonly level: LinkLevel;
  readonly id: string;
}

/** `error`: the link could not even be read (e.g. 403 on that level); apply reports it as failed. */
export type PlanAction = 'create' | 'update' | 'repair' | 'none' | 'foreign' | 'error';

export interface PlanItem {
  readonly region: TelemetryRegion;
  readonly kind: 'router' | 'destination' | 'access-token' | 'link';
  /** What it is about: `router "auditlog-shipper"`, `project 0b1f…`. */
  readonly target: string;
  readonly action: PlanAction;
  /** Why, in words: `points at router 5c2e…`, `status failed`. */
  readonly detail: string;
  /** For links: the level and its current link. */
  readonly level?: LinkLevelRef;
  readonly current?: TelemetryLink;
}

export interface RegionPlan {
  readonly region: TelemetryRegion;
  readonly router: TelemetryRouter | undefined;
  readonly destination: Destination | undefined;
  readonly items: readonly PlanItem[];
}

export interface LinksPlan {
  readonly provider: string;
  readonly regions: readonly RegionPlan[];
}

export interface ApplyOutcome {
  readonly region: TelemetryRegion;
  readonly kind: PlanItem['kind'];
  readonly target: string;
  readonly result: 'created' | 'updated' | 'repaired' | 'unchanged' | 'foreign' | 'failed';
  readonly detail: string;
}

export interface LinksDeps {
  readonly provider: string;
  readonly settings: TelemetrySettings;
  readonly links: TelemetryLinkClient;
  readonly routers: TelemetryRouterClient;
  readonly resourceManager: ResourceManagerClient;
  readonly signal: AbortSignal;
  readonly log: Logger;
}

/**
 * The levels to link: every configured scope of the provider, and what discovery finds under those
 * with `discover` (with their include/exclude filters), each once.
 */
export async function linkLevels(
  scopes: readonly StackitScopeSettings[],
  deps: Pick<LinksDeps, 'resourceManager' | 'signal' | 'log'>,
): Promise<LinkLevelRef[]> {
  const out = new Map<string, LinkLevelRef>();
  for (const scope of scopes) {
    out.set(scope.id, { level: scope.kind, id: scope.id });
    if (scope.discover === undefined) continue;
    const found = await walkHierarchy(
      deps.resourceManager,
      { kind: scope.kind, id: scope.id },
      scope.discover,
      deps.signal,
      deps.log,
    );
    for (const container of found) {
      if (!out.has(container.id)) out.set(container.id, { level: container.kind, id: container.id });
    }
  }
  return [...out.values()];
}

/** What apply would do; reads only. */
export async function planLinks(levels: readonly LinkLevelRef[], deps: LinksDeps): Promise<LinksPlan> {
  const regions: RegionPlan[] = [];
  for (const region of deps.settings.regions) regions.push(await planRegion(region, levels, deps));
  return { provider: deps.provider, regions };
}

async function planRegion(
  region: TelemetryRegion,
  levels: readonly LinkLevelRef[],
  deps: LinksDeps,
): Promise<RegionPlan> {
  const { settings, signal, log } = deps;
  const at: RouterLocation = { projectId: settings.routerProject, region };
  const items: PlanItem[] = [];
  const routerLabel = `router "${settings.routerName}" in project ${settings.routerProject}`;

  const router = (await deps.routers.listRouters(at, signal, log))
    .filter((r) => r.displayName === settings.routerName && isOurs(r.description))
    .sort((a, b) => a.creationTime.localeCompare(b.creationTime))[0];
  items.push({
    region,
    kind: 'router',
    target: routerLabel,
    action: router ? 'none' : 'create',
    detail: router ? `exists (${router.id}, ${router.status})` : 'no router of the shipper yet',
  });

  const wanted = destinationDescription(deps.settings.destination, settings.routerProject, region);
  const destination = router
    ? (await deps.routers.listDestinations(at, router.id, signal, log)).find((d) => isOurs(d.description))
    : undefined;
  const destinationLabel = `OpenTelemetry destination ${settings.destination.url}`;
  if (destination === undefined) {
    items.push({
      region,
      kind: 'destination',
      target: destinationLabel,
      action: 'create',
      detail: 'none yet',
    });
  } else if (
    destination.config.openTelemetry?.uri !== settings.destination.url ||
    destination.description !== wanted
  ) {
    items.push({
      region,
      kind: 'destination',
      target: destinationLabel,
      action: 'update',
      detail:
        destination.config.openTelemetry?.uri !== settings.destination.url
          ? `points at ${destination.config.openTelemetry?.uri ?? `a ${destination.config.configType} target`}`
          : 'credential changed',
    });
  } else {
    items.push({
      region,
      kind: 'destination',
      target: destinationLabel,
      action: 'none',
      detail: `exists (${destination.id})`,
    });
  }

  const linkItems = await mapLimit(levels, CONCURRENCY, async (level): Promise<PlanItem> => {
    try {
      const current = await deps.links.get({ ...level, region }, signal, log);
      return linkItem(region, level, current, router, settings.routerName);
    } catch (error) {
      // One level the service account may not read must not hide the plan of all the others.
      if (!(error instanceof ProviderError)) throw error;
      return {
        region,
        kind: 'link',
        target: `${level.level} ${level.id}`,
        level,
        action: 'error',
        detail: error.message,
      };
    }
  });
  items.push(...linkItems);

  if (
    linkItems.some((item) => item.action === 'create' || item.action === 'update' || item.action === 'repair')
  ) {
    items.push({
      region,
      kind: 'access-token',
      target: `access token "${settings.routerName}"`,
      action: 'create',
      detail:
        'links need a router access token (shown only when created, so one per apply that writes links)',
    });
  }
  return { region, router, destination, items };
}

function linkItem(
  region: TelemetryRegion,
  level: LinkLevelRef,
  current: TelemetryLink | undefined,
  router: TelemetryRouter | undefined,
  routerName: string,
): PlanItem {
  const base = { region, kind: 'link' as const, target: `${level.level} ${level.id}`, level };
  if (current === undefined) return { ...base, action: 'create', detail: 'no link' };
  const withCurrent = { ...base, current };
  if (!isOurs(current.description)) {
    return {
      ...withCurrent,
      action: 'foreign',
      detail: `a link the shipper did not create ("${current.displayName}", router ${current.telemetryRouterId}) is left alone; only one link per level and region exists, so its events do not reach the shipper`,
    };
  }
  if (router === undefined || current.telemetryRouterId !== router.id) {
    return { ...withCurrent, action: 'update', detail: `points at router ${current.telemetryRouterId}` };
  }
  if (!current.enabled) return { ...withCurrent, action: 'update', detail: 'disabled' };
  if (current.displayName !== routerName) return { ...withCurrent, action: 'update', detail: 'renamed' };
  if (current.status === 'failed') return { ...withCurrent, action: 'repair', detail: 'status failed' };
  if (current.status === 'deleting') return { ...withCurrent, action: 'repair', detail: 'being deleted' };
  return { ...withCurrent, action: 'none', detail: `status ${current.status}` };
}

/**
 * Carries out a plan. The router, destination and access token come first; then every link that needs
 * it is written with PUT (idempotent). A link that fails is reported with the API's answer and the
 * others go on; a link the API answers with status `failed` counts as failed.
 */
export async function applyLinks(plan: LinksPlan, deps: LinksDeps): Promise<ApplyOutcome[]> {
  const outcomes: ApplyOutcome[] = [];
  for (const region of plan.regions) outcomes.push(...(await applyRegion(region, deps)));
  return outcomes;
}

async function applyRegion(plan: RegionPlan, deps: LinksDeps): Promise<ApplyOutcome[]> {
  const { settings, signal, log } = deps;
  const { region } = plan;
  const at: RouterLocation = { projectId: settings.routerProject, region };
  const out: ApplyOutcome[] = [];
  const item = (kind: PlanItem['kind']) => plan.items.find((i) => i.kind === kind) as PlanItem;
  const failAll = (error: unknown, from: PlanItem['kind']) => {
    // Without a router, destination or token nothing after it can be done: each remaining item says why.
    const reason = `not attempted: ${from} failed: ${(error as Error).message}`;
    for (const rest of plan.items) {
      if (out.some((o) => o.kind === rest.kind && o.target === rest.target)) continue;
      out.push({
        region,
        kind: rest.kind,
        target: rest.target,
        result: rest.kind !== from && rest.action === 'foreign' ? 'foreign' : 'failed',
        detail:
          rest.kind === from ? (error as Error).message : rest.action === 'foreign' ? rest.detail : reason,
      });
    }
    return out;
  };

  let router = plan.router;
  const routerItem = item('router');
  if (router === undefined) {
    try {
      router = await deps.routers.createRouter(
        at,
        { displayName: settings.routerName, description: MARKER },
        signal,
        log,
      );
      out.push({ region, kind: 'router', target: routerItem.target, result: 'created', detail: router.id });
    } catch (error) {
      return failAll(error, 'router');
    }
  } else {
    out.push({ region, kind: 'router', target: routerItem.target, result: 'unchanged', detail: router.id });
  }

  const destinationItem = item('destination');
  try {
    const request = {
      displayName: settings.routerName,
      description: destinationDescription(settings.destination, settings.routerProject, region),
      config: destinationConfig(settings.destination),
    };
    if (destinationItem.action === 'create') {
      const created = await deps.routers.createDestination(at, router.id, request, signal, log);
      out.push({
        region,
        kind: 'destination',
        target: destinationItem.target,
        result: 'created',
        detail: created.id,
      });
    } else if (destinationItem.action === 'update' && plan.destination) {
      await deps.routers.updateDestination(at, router.id, plan.destination.id, request, signal, log);
      out.push({
        region,
        kind: 'destination',
        target: destinationItem.target,
        result: 'updated',
        detail: destinationItem.detail,
      });
    } else {
      out.push({
        region,
        kind: 'destination',
        target: destinationItem.target,
        result: 'unchanged',
        detail: destinationItem.detail,
      });
    }
  } catch (error) {
    return failAll(error, 'destination');
  }

  const writes = plan.items.filter(
    (i) => i.kind === 'link' && (i.action === 'create' || i.action === 'update' || i.action === 'repair'),
  );
  let accessToken: string | undefined;
  if (writes.length > 0) {
    const tokenItem = item('access-token');
    try {
      const created = await deps.routers.createAccessToken(
        at,
        router.id,
        { displayName: settings.routerName, description: MARKER },
        signal,
        log,
      );
      accessToken = created.accessToken;
      out.push({
        region,
        kind: 'access-token',
        target: tokenItem.target,
        result: 'created',
        detail: created.id,
      });
    } catch (error) {
      return failAll(error, 'access-token');
    }
  }

  const routerId = router.id;
  const linkOutcomes = await mapLimit(
    plan.items.filter((i) => i.kind === 'link'),
    CONCURRENCY,
    async (link): Promise<ApplyOutcome> => {
      const base = { region, kind: 'link' as const, target: link.target };
      if (link.action === 'none') return { ...base, result: 'unchanged', detail: link.detail };
      if (link.action === 'foreign') return { ...base, result: 'foreign', detail: link.detail };
      if (link.action === 'error') return { ...base, result: 'failed', detail: link.detail };
      const target: LinkTarget = { ...(link.level as LinkLevelRef), region };
      try {
        const written = await deps.links.put(
          target,
          {
            displayName: settings.routerName,
            description: MARKER,
            telemetryRouterId: routerId,
            enabled: true,
            accessToken: accessToken as string,
          },
          signal,
          log,
        );
        if (written.status === 'failed') {
          return {
            ...base,
            result: 'failed',
            detail: `${describeLink(target)}: the API reports status failed`,
          };
        }
        const result =
          link.action === 'create' ? 'created' : link.action === 'update' ? 'updated' : 'repaired';
        return { ...base, result, detail: `status ${written.status}` };
      } catch (error) {
        if (!(error instanceof ProviderError)) throw error;
        return { ...base, result: 'failed', detail: error.message };
      }
    },
  );
  out.push(...linkOutcomes);
  return out;
}

/** True when a description carries the shipper's marker. */
export function isOurs(description: string | undefined): boolean {
  return description?.startsWith(MARKER) === true;
}

function destinationConfig(destination: TelemetryDestination): OpenTelemetryDestinationConfig {
  const { auth } = destination;
  return {
    configType: 'OpenTelemetry',
    openTelemetry: {
      uri: destination.url,
      ...(auth.kind === 'bearer'
        ? { bearerToken: auth.token.reveal() }
        : { basicAuth: { username: auth.username, password: auth.password.reveal() } }),
    },
  };
}

/**
 * The destination's description: the marker and a fingerprint of the URL and credential, so a changed
 * credential is noticed although the API never shows it back. The fingerprint is scrypt, salted with
 * the project and region, so the description does not make guessing a credential cheap.
 */
export function destinationDescription(
  destination: TelemetryDestination,
  project: string,
  region: string,
): string {
  const { auth } = destination;
  const credential =
    auth.kind === 'bearer'
      ? `bearer\n${auth.token.reveal()}`
      : `basic\n${auth.username}\n${auth.password.reveal()}`;
  const digest = scryptSync(
    `${destination.url}\n${credential}`,
    `auditlog-shipper|${project}|${region}`,
    12,
  ).toString('hex');
  return `${MARKER} config ${digest}`;
}

/** `fn` over `items` with at most `limit` in flight; results in input order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) results[i] = await fn(items[i] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
