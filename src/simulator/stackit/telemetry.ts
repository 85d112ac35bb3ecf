/**
 * STACKIT's Telemetry Link and Telemetry Router management APIs, simulated from their published
 * OpenAPI specs (`services/telemetry-link/v1`, `services/telemetry-router/v1`, research update §2.2):
 *
 * - Links: `PUT|GET|PATCH|DELETE /v1/{organizations|folders|projects}/{id}/regions/{region}/telemetry-link`,
 *   one link per level and region; PUT answers 201 (created) or 200 (replaced), honours
 *   `If-None-Match: *` (412 when a link exists); status `reconciling` → `active` (or `inactive` when
 *   disabled) after `reconcileMs`, `failed` when its router or access token is gone or a test says so,
 *   `deleting` for `deleteMs` after DELETE.
 * - Routers, destinations and access tokens under `/v1/projects/{projectId}/regions/{region}/telemetry-routers`,
 *   lists paged by `pageToken`/`pageSize` (default 10, at most 100), access tokens shown once at creation.
 *
 * Every request needs a bearer token the simulated identity accepts (401 `{message}` otherwise); bodies
 * are validated like the spec says (names, descriptions, regions, UUIDs, the link's router and token).
 * Ground truth: `links()`, `routers()`, `destinations()`; `linkedContainers(routerId)` is what a router
 * receives events of.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { SimClock } from '../clock.ts';
import type { FaultInjector } from '../faults.ts';
import { formatRfc3339Ms } from '../rfc3339.ts';
import type { Route, RouteContext, SimModule, SimReply, SimResponse } from '../server.ts';
import type { StackitIdentity } from './identity.ts';
import type { StackitResourceManager } from './resource-manager.ts';

export const TELEMETRY_SIM_REGIONS = ['eu01', 'eu02'] as const;
export type SimLinkLevel = 'organization' | 'folder' | 'project';
export type SimLinkStatus = 'active' | 'inactive' | 'failed' | 'reconciling' | 'deleting';

const JSON_HEADERS = { 'content-type': 'application/json' } as const;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DISPLAY_NAME = /^[a-zA-Z0-9][a-zA-Z0-9 -]*$/;
const DESCRIPTION = /^([a-zA-Z0-9][a-zA-Z0-9 -]*)?$/;
const ACCESS_TOKEN = /^[A-Za-z0-9\-_=]+\.[A-Za-z0-9\-_=]+\.?[A-Za-z0-9\-_.+/=]*$/;
const LEVELS: Readonly<Record<string, SimLinkLevel>> = {
  organizations: 'organization',
  folders: 'folder',
  projects: 'project',
};

export interface SimLink {
  readonly id: string;
  readonly level: SimLinkLevel;
  readonly containerId: string;
  readonly region: string;
  displayName: string;
  description: string | undefined;
  telemetryRouterId: string;
  enabled: boolean;
  accessToken: string;
  readonly createTime: string;
  /** From here on the link is no longer `reconciling`. */
  settledAtMs: number;
  /** Set by DELETE: the link is `deleting` until then, and gone after. */
  deletedAtMs: number | undefined;
  /** A test made it fail. */
  forcedFailed: boolean;
}

export interface SimRouter {
  readonly id: string;
  readonly projectId: string;
  readonly region: string;
  displayName: string;
  description: string | undefined;
  filter: unknown;
  readonly creationTime: string;
  readonly createdAtMs: number;
}

export interface SimDestination {
  readonly id: string;
  readonly routerId: string;
  displayName: string;
  description: string | undefined;
  /** As sent, credentials included: the pusher needs them (the API never shows them back). */
  config: DestinationConfig;
  readonly creationTime: string;
  readonly createdAtMs: number;
}

export interface DestinationConfig {
  readonly configType: 'OpenTelemetry' | 'S3';
  readonly openTelemetry?: {
    readonly uri: string;
    readonly bearerToken?: string;
    readonly basicAuth?: { readonly username: string; readonly password: string };
  };
  readonly s3?: { readonly endpoint: string; readonly bucket: string; readonly accessKey?: unknown };
  readonly filter?: unknown;
}

export interface SimAccessToken {
  readonly id: string;
  readonly routerId: string;
  displayName: string;
  description: string | undefined;
  readonly token: string;
  readonly expiresAtMs: number | undefined;
  readonly creatorId: string;
}

export interface TelemetryDeps {
  readonly clock: SimClock;
  readonly identity: StackitIdentity;
  /** Links are only accepted for containers the Resource Manager knows. */
  readonly resourceManager: StackitResourceManager;
  /** Faults of these two APIs only. */
  readonly faults: FaultInjector;
}

/** Ground truth of one link, as the API would show it now. */
export interface LinkTruth {
  readonly level: SimLinkLevel;
  readonly containerId: string;
  readonly region: string;
  readonly telemetryRouterId: string;
  readonly status: SimLinkStatus;
  readonly enabled: boolean;
  readonly displayName: string;
  readonly description: string | undefined;
}

export class StackitTelemetry implements SimModule {
  readonly name = 'stackit.telemetry';
  readonly routes: readonly Route[];
  /** How long a created or changed link, router or destination stays `reconciling`. */
  reconcileMs = 1_000;
  /** How long a deleted link stays `deleting`. */
  deleteMs = 1_000;
  readonly #deps: TelemetryDeps;
  readonly #links = new Map<string, SimLink>();
  readonly #routers = new Map<string, SimRouter>();
  readonly #destinations = new Map<string, SimDestination>();
  readonly #tokens = new Map<string, SimAccessToken>();
  /** Containers whose link requests are refused with 403 (a service account without the role there). */
  readonly #forbidden = new Set<string>();
  readonly #requests: Array<{ method: string; path: string }> = [];

  constructor(deps: TelemetryDeps) {
    this.#deps = deps;
    this.routes = [
      {
        name: 'stackit.telemetry-link',
        methods: ['GET', 'PUT', 'PATCH', 'DELETE'],
        path: /^\/v1\/(organizations|folders|projects)\/([^/]+)\/regions\/([^/]+)\/telemetry-link$/,
        handle: (ctx) => this.#guard(ctx, () => this.#link(ctx)),
      },
      {
        name: 'stackit.telemetry-routers',
        methods: ['GET', 'POST'],
        path: /^\/v1\/projects\/([^/]+)\/regions\/([^/]+)\/telemetry-routers$/,
        handle: (ctx) => this.#guard(ctx, () => this.#routersRoute(ctx)),
      },
      {
        name: 'stackit.telemetry-router',
        methods: ['GET', 'PUT', 'DELETE'],
        path: /^\/v1\/projects\/([^/]+)\/regions\/([^/]+)\/telemetry-routers\/([^/]+)$/,
        handle: (ctx) => this.#guard(ctx, () => this.#routerRoute(ctx)),
      },
      {
        name: 'stackit.telemetry-router-children',
        methods: ['GET', 'POST'],
        path: /^\/v1\/projects\/([^/]+)\/regions\/([^/]+)\/telemetry-routers\/([^/]+)\/(destinations|access-tokens)$/,
        handle: (ctx) => this.#guard(ctx, () => this.#childrenRoute(ctx)),
      },
      {
        name: 'stackit.telemetry-router-child',
        methods: ['GET', 'PUT', 'DELETE'],
        path: /^\/v1\/projects\/([^/]+)\/regions\/([^/]+)\/telemetry-routers\/([^/]+)\/(destinations|access-tokens)\/([^/]+)$/,
        handle: (ctx) => this.#guard(ctx, () => this.#childRoute(ctx)),
      },
    ];
  }

  // ---------------------------------------------------------------- test controls and ground truth

  /** Every link that exists now (deleted ones vanish once `deleteMs` has passed). */
  links(): LinkTruth[] {
    this.#sweep();
    return [...this.#links.values()].map((link) => ({
      level: link.level,
      containerId: link.containerId,
      region: link.region,
      telemetryRouterId: link.telemetryRouterId,
      status: this.#linkStatus(link),
      enabled: link.enabled,
      displayName: link.displayName,
      description: link.description,
    }));
  }

  routers(): SimRouter[] {
    return [...this.#routers.values()];
  }

  destinations(routerId?: string): SimDestination[] {
    return [...this.#destinations.values()].filter((d) => routerId === undefined || d.routerId === routerId);
  }

  accessTokens(routerId?: string): SimAccessToken[] {
    return [...this.#tokens.values()].filter((t) => routerId === undefined || t.routerId === routerId);
  }

  /** Containers whose events reach `routerId`: enabled links that are active (no inheritance). */
  linkedContainers(routerId: string): Array<{ level: SimLinkLevel; containerId: string; region: string }> {
    return this.links()
      .filter((l) => l.telemetryRouterId === routerId && l.status === 'active')
      .map(({ level, containerId, region }) => ({ level, containerId, region }));
  }

  /** A link someone else made (another team, the portal): the shipper must leave it alone. */
  addForeignLink(init: {
    level: SimLinkLevel;
    containerId: string;
    region: string;
    telemetryRouterId?: string;
    displayName?: string;
  }): void {
    const now = this.#deps.clock.simNow();
    this.#links.set(linkKey(init.level, init.containerId, init.region), {
      id: randomUUID(),
      level: init.level,
      containerId: init.containerId.toLowerCase(),
      region: init.region,
      displayName: init.displayName ?? 'security team',
      description: 'owned by someone else',
      telemetryRouterId: init.telemetryRouterId ?? randomUUID(),
      enabled: true,
      accessToken: `${randomBytes(8).toString('base64url')}.${randomBytes(8).toString('base64url')}.x`,
      createTime: formatRfc3339Ms(now),
      settledAtMs: now,
      deletedAtMs: undefined,
      forcedFailed: false,
    });
  }

  /** Marks an existing link `failed`, as the platform does when routing through it breaks. */
  failLink(level: SimLinkLevel, containerId: string, region: string): void {
    const link = this.#links.get(linkKey(level, containerId, region));
    if (!link) throw new Error(`no link for ${level} ${containerId} in ${region}`);
    link.forcedFailed = true;
  }

  /** Link requests for this container are refused with 403 from now on (or again accepted). */
  setForbidden(containerId: string, forbidden: boolean): void {
    if (forbidden) this.#forbidden.add(containerId.toLowerCase());
    else this.#forbidden.delete(containerId.toLowerCase());
  }

  /** Method and path of every request since the last reset (mutations are what idempotency tests count). */
  requests(): Array<{ method: string; path: string }> {
    return [...this.#requests];
  }

  resetRequests(): void {
    this.#requests.length = 0;
  }

  // ---------------------------------------------------------------- the APIs

  #guard(ctx: RouteContext, handle: () => SimResponse): SimReply {
    const now = this.#deps.clock.simNow();
    ctx.observe({
      route: this.name,
      scope: null,
      scopeKey: null,
      startRange: null,
      endRange: null,
      limit: null,
      cursorPresent: false,
      simNowMs: now,
    });
    this.#requests.push({ method: ctx.method, path: ctx.url.pathname });
    if (this.#requests.length > 100_000) this.#requests.shift();
    if (this.#deps.identity.authorize(ctx.req.headers.authorization) === undefined) {
      return message(401, 'Unauthorized. You may have provided no or wrong credentials.');
    }
    const fault = this.#deps.faults.next();
    if (fault?.type === 'reset') return { reset: true };
    // The specs' 500 has no body; other 5xx come from gateways in front of the API.
    if (fault?.type === 'status') return { status: fault.status, body: '' };
    this.#sweep();
    const reply = handle();
    return fault?.type === 'slow' ? { ...reply, delayMs: fault.delayMs } : reply;
  }

  #link(ctx: RouteContext): SimResponse {
    const [collection, rawId, region] = ctx.params as [string, string, string];
    const level = LEVELS[collection] as SimLinkLevel;
    const bad = checkRegion(region) ?? checkUuid(rawId, `${level}Id`);
    if (bad) return bad;
    const id = rawId.toLowerCase();
    if (this.#forbidden.has(id)) return message(403, `Forbidden: no permission on ${level} ${id}`);
    const container = this.#deps.resourceManager.get(id);
    if (container === undefined || container.kind !== level) {
      return { status: 404, body: '' };
    }
    const key = linkKey(level, id, region);
    const existing = this.#links.get(key);
    const now = this.#deps.clock.simNow();
    switch (ctx.method) {
      case 'GET':
        return existing ? json(200, this.#renderLink(existing)) : { status: 404, body: '' };
      case 'DELETE': {
        if (!existing) return { status: 404, body: '' };
        if (existing.deletedAtMs !== undefined) return message(409, 'the link is being deleted');
        existing.deletedAtMs = now + this.deleteMs;
        return { status: 204, body: '' };
      }
      case 'PUT': {
        if (ctx.req.headers['if-none-match'] === '*' && existing) {
          return message(412, 'Precondition Failed: the link exists');
        }
        if (existing?.deletedAtMs !== undefined) return message(409, 'the link is being deleted');
        const body = parseBody(ctx.body);
        if (typeof body === 'string') return message(400, body);
        const missing = ['displayName', 'telemetryRouterId', 'enabled', 'accessToken'].filter(
          (k) => body[k] === undefined,
        );
        if (missing.length > 0) return message(400, `missing required fields: ${missing.join(', ')}`);
        const invalid = this.#checkLinkFields(body, region);
        if (invalid) return message(400, invalid);
        const link: SimLink = {
          id: existing?.id ?? randomUUID(),
          level,
          containerId: id,
          region,
          displayName: body.displayName as string,
          description: body.description as string | undefined,
          telemetryRouterId: (body.telemetryRouterId as string).toLowerCase(),
          enabled: body.enabled as boolean,
          accessToken: body.accessToken as string,
          createTime: existing?.createTime ?? formatRfc3339Ms(now),
          settledAtMs: now + this.reconcileMs,
          deletedAtMs: undefined,
          forcedFailed: false,
        };
        this.#links.set(key, link);
        return json(existing ? 200 : 201, this.#renderLink(link));
      }
      case 'PATCH': {
        if (!existing) return { status: 404, body: '' };
        if (existing.deletedAtMs !== undefined) return message(409, 'the link is being deleted');
        const body = parseBody(ctx.body);
        if (typeof body === 'string') return message(400, body);
        const merged = { ...this.#requestOf(existing), ...body };
        const invalid = this.#checkLinkFields(merged, region);
        if (invalid) return message(400, invalid);
        existing.displayName = merged.displayName as string;
        existing.description = merged.description as string | undefined;
        existing.telemetryRouterId = (merged.telemetryRouterId as string).toLowerCase();
        existing.enabled = merged.enabled as boolean;
        existing.accessToken = merged.accessToken as string;
        existing.settledAtMs = now + this.reconcileMs;
        existing.forcedFailed = false;
        return json(200, this.#renderLink(existing));
      }
      default:
        return message(405, 'method not allowed');
    }
  }

  /** The spec's field rules, and what the platform must check: the router exists here, the token is its own. */
  #checkLinkFields(body: Record<string, unknown>, region: string): string | undefined {
    const names = checkNames(body);
    if (names) return names;
    if (typeof body.enabled !== 'boolean') return 'enabled must be a boolean';
    if (typeof body.telemetryRouterId !== 'string' || body.telemetryRouterId.length > 1024) {
      return 'telemetryRouterId must be a string of at most 1024 characters';
    }
    if (typeof body.accessToken !== 'string' || !ACCESS_TOKEN.test(body.accessToken)) {
      return 'accessToken must be a telemetry router access token (a JWT)';
    }
    const router = this.#routers.get(body.telemetryRouterId.toLowerCase());
    if (router === undefined || router.region !== region) {
      return `telemetry router ${body.telemetryRouterId} does not exist in region ${region}`;
    }
    const token = [...this.#tokens.values()].find((t) => t.token === body.accessToken);
    if (token === undefined || token.routerId !== router.id || this.#tokenExpired(token)) {
      return 'accessToken is not a valid access token of the telemetry router';
    }
    return undefined;
  }

  #requestOf(link: SimLink): Record<string, unknown> {
    return {
      displayName: link.displayName,
      description: link.description,
      telemetryRouterId: link.telemetryRouterId,
      enabled: link.enabled,
      accessToken: link.accessToken,
    };
  }

  #linkStatus(link: SimLink): SimLinkStatus {
    const now = this.#deps.clock.simNow();
    if (link.deletedAtMs !== undefined) return 'deleting';
    if (link.forcedFailed) return 'failed';
    const router = this.#routers.get(link.telemetryRouterId);
    const token = [...this.#tokens.values()].find((t) => t.token === link.accessToken);
    if (router === undefined || token === undefined || this.#tokenExpired(token)) return 'failed';
    if (now < link.settledAtMs) return 'reconciling';
    return link.enabled ? 'active' : 'inactive';
  }

  #renderLink(link: SimLink): Record<string, unknown> {
    return {
      id: link.id,
      displayName: link.displayName,
      ...(link.description !== undefined ? { description: link.description } : {}),
      regionId: link.region,
      telemetryRouterId: link.telemetryRouterId,
      enabled: link.enabled,
      status: this.#linkStatus(link),
      createTime: link.createTime,
    };
  }

  #routersRoute(ctx: RouteContext): SimResponse {
    const [projectId, region] = ctx.params as [string, string];
    const bad = checkRegion(region) ?? checkUuid(projectId, 'projectId');
    if (bad) return bad;
    const project = projectId.toLowerCase();
    if (ctx.method === 'GET') {
      const all = [...this.#routers.values()].filter((r) => r.projectId === project && r.region === region);
      return page(ctx, all, 'telemetryRouters', (r) => this.#renderRouter(r));
    }
    const named = readNamed(ctx.body, true);
    if ('reply' in named) return named.reply;
    const { body } = named;
    const now = this.#deps.clock.simNow();
    const router: SimRouter = {
      id: randomUUID(),
      projectId: project,
      region,
      displayName: body.displayName as string,
      description: body.description as string | undefined,
      filter: body.filter,
      creationTime: formatRfc3339Ms(now),
      createdAtMs: now,
    };
    this.#routers.set(router.id, router);
    return json(201, this.#renderRouter(router));
  }

  #routerRoute(ctx: RouteContext): SimResponse {
    const found = this.#findRouter(ctx);
    if ('status' in found) return found;
    const { router } = found;
    if (ctx.method === 'GET') return json(200, this.#renderRouter(router));
    if (ctx.method === 'DELETE') {
      const children = this.destinations(router.id).length + this.accessTokens(router.id).length;
      if (children > 0 && ctx.url.searchParams.get('force') !== 'true') {
        return message(409, 'the telemetry router has destinations or access tokens; use force=true');
      }
      for (const d of this.destinations(router.id)) this.#destinations.delete(d.id);
      for (const t of this.accessTokens(router.id)) this.#tokens.delete(t.id);
      this.#routers.delete(router.id);
      return { status: 204, body: '' };
    }
    const named = readNamed(ctx.body, false);
    if ('reply' in named) return named.reply;
    const { body } = named;
    if (typeof body.displayName === 'string') router.displayName = body.displayName;
    if (body.description !== undefined) router.description = body.description as string;
    if (body.filter !== undefined) router.filter = body.filter;
    return json(200, this.#renderRouter(router));
  }

  #renderRouter(router: SimRouter): Record<string, unknown> {
    return {
      id: router.id,
      displayName: router.displayName,
      ...(router.description !== undefined ? { description: router.description } : {}),
      ...(router.filter !== undefined ? { filter: router.filter } : {}),
      status: this.#deps.clock.simNow() < router.createdAtMs + this.reconcileMs ? 'reconciling' : 'active',
      creationTime: router.creationTime,
      uri: `https://${router.id}.telemetry-router.${router.region}.stackit.cloud`,
    };
  }

  #childrenRoute(ctx: RouteContext): SimResponse {
    const found = this.#findRouter(ctx);
    if ('status' in found) return found;
    const { router } = found;
    const kind = ctx.params[3] as 'destinations' | 'access-tokens';
    if (ctx.method === 'GET') {
      return kind === 'destinations'
        ? page(ctx, this.destinations(router.id), 'destinations', (d) => this.#renderDestination(d))
        : page(ctx, this.accessTokens(router.id), 'accessTokens', (t) => this.#renderToken(t));
    }
    const named = readNamed(ctx.body, true);
    if ('reply' in named) return named.reply;
    const { body } = named;
    const now = this.#deps.clock.simNow();
    if (kind === 'access-tokens') {
      const ttl = body.ttl;
      if (ttl !== undefined && ttl !== null && (!Number.isInteger(ttl) || (ttl as number) < 1)) {
        return message(400, 'ttl must be an integer >= 1 (days)');
      }
      const token: SimAccessToken = {
        id: randomUUID(),
        routerId: router.id,
        displayName: body.displayName as string,
        description: body.description as string | undefined,
        token: this.#jwt(router.id),
        expiresAtMs: typeof ttl === 'number' ? now + ttl * 86_400_000 : undefined,
        creatorId: randomUUID(),
      };
      this.#tokens.set(token.id, token);
      return json(201, { ...this.#renderToken(token), accessToken: token.token });
    }
    const config = checkDestinationConfig(body.config);
    if (typeof config === 'string') return message(400, config);
    const destination: SimDestination = {
      id: randomUUID(),
      routerId: router.id,
      displayName: body.displayName as string,
      description: body.description as string | undefined,
      config,
      creationTime: formatRfc3339Ms(now),
      createdAtMs: now,
    };
    this.#destinations.set(destination.id, destination);
    return json(201, this.#renderDestination(destination));
  }

  #childRoute(ctx: RouteContext): SimResponse {
    const found = this.#findRouter(ctx);
    if ('status' in found) return found;
    const { router } = found;
    const kind = ctx.params[3] as 'destinations' | 'access-tokens';
    const childId = (ctx.params[4] as string).toLowerCase();
    const bad = checkUuid(childId, kind === 'destinations' ? 'destinationId' : 'accessTokenId');
    if (bad) return bad;
    if (kind === 'access-tokens') {
      const token = this.#tokens.get(childId);
      if (token === undefined || token.routerId !== router.id) return { status: 404, body: '' };
      if (ctx.method === 'GET') return json(200, this.#renderToken(token));
      if (ctx.method === 'DELETE') {
        this.#tokens.delete(token.id);
        return { status: 204, body: '' };
      }
      const named = readNamed(ctx.body, false);
      if ('reply' in named) return named.reply;
      const { body } = named;
      if (typeof body.displayName === 'string') token.displayName = body.displayName;
      if (body.description !== undefined)
        token.description = (body.description as string | null) ?? undefined;
      return json(200, this.#renderToken(token));
    }
    const destination = this.#destinations.get(childId);
    if (destination === undefined || destination.routerId !== router.id) return { status: 404, body: '' };
    if (ctx.method === 'GET') return json(200, this.#renderDestination(destination));
    if (ctx.method === 'DELETE') {
      this.#destinations.delete(destination.id);
      return { status: 204, body: '' };
    }
    const named = readNamed(ctx.body, false);
    if ('reply' in named) return named.reply;
    const { body } = named;
    if (body.config !== undefined) {
      const config = checkDestinationConfig(body.config);
      if (typeof config === 'string') return message(400, config);
      destination.config = config;
    }
    if (typeof body.displayName === 'string') destination.displayName = body.displayName;
    if (body.description !== undefined) destination.description = body.description as string;
    return json(200, this.#renderDestination(destination));
  }

  #renderDestination(d: SimDestination): Record<string, unknown> {
    const otel = d.config.openTelemetry;
    return {
      id: d.id,
      displayName: d.displayName,
      ...(d.description !== undefined ? { description: d.description } : {}),
      status: this.#deps.clock.simNow() < d.createdAtMs + this.reconcileMs ? 'reconciling' : 'active',
      creationTime: d.creationTime,
      credentialType: otel?.basicAuth ? 'basicAuth' : otel ? 'bearerToken' : 'accessKey',
      // Credentials are write-only: the answer carries the URI and the type, never the secret.
      config: {
        configType: d.config.configType,
        ...(otel ? { openTelemetry: { uri: otel.uri } } : {}),
        ...(d.config.s3 ? { s3: { endpoint: d.config.s3.endpoint, bucket: d.config.s3.bucket } } : {}),
        ...(d.config.filter !== undefined ? { filter: d.config.filter } : {}),
      },
    };
  }

  #renderToken(t: SimAccessToken): Record<string, unknown> {
    return {
      id: t.id,
      displayName: t.displayName,
      ...(t.description !== undefined ? { description: t.description } : {}),
      status: this.#tokenExpired(t) ? 'expired' : 'active',
      creatorId: t.creatorId,
      expirationTime: t.expiresAtMs === undefined ? null : formatRfc3339Ms(t.expiresAtMs),
    };
  }

  #findRouter(ctx: RouteContext): { router: SimRouter } | SimResponse {
    const [projectId, region, routerId] = ctx.params as [string, string, string];
    const bad =
      checkRegion(region) ?? checkUuid(projectId, 'projectId') ?? checkUuid(routerId, 'telemetryRouterId');
    if (bad) return bad;
    const router = this.#routers.get(routerId.toLowerCase());
    if (router === undefined || router.projectId !== projectId.toLowerCase() || router.region !== region) {
      return { status: 404, body: '' };
    }
    return { router };
  }

  #tokenExpired(token: SimAccessToken): boolean {
    return token.expiresAtMs !== undefined && token.expiresAtMs <= this.#deps.clock.simNow();
  }

  /** Router access tokens are JWTs (the Link API's pattern requires one); opaque here. */
  #jwt(routerId: string): string {
    const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
    const claims = Buffer.from(JSON.stringify({ sub: routerId, jti: randomUUID() })).toString('base64url');
    return `${header}.${claims}.${randomBytes(32).toString('base64url')}`;
  }

  /** Deleted links disappear once their `deleting` time is over. */
  #sweep(): void {
    const now = this.#deps.clock.simNow();
    for (const [key, link] of this.#links) {
      if (link.deletedAtMs !== undefined && link.deletedAtMs <= now) this.#links.delete(key);
    }
  }
}

function linkKey(level: SimLinkLevel, id: string, region: string): string {
  return `${level}/${id.toLowerCase()}/${region}`;
}

function json(status: number, value: unknown): SimResponse {
  return { status, headers: JSON_HEADERS, body: JSON.stringify(value) };
}

/** The specs' `response4xx`. */
function message(status: number, text: string): SimResponse {
  return json(status, { message: text });
}

function checkRegion(region: string): SimResponse | undefined {
  return (TELEMETRY_SIM_REGIONS as readonly string[]).includes(region)
    ? undefined
    : message(400, `regionId must be one of ${TELEMETRY_SIM_REGIONS.join(', ')}`);
}

function checkUuid(value: string, name: string): SimResponse | undefined {
  return UUID.test(value) ? undefined : message(400, `${name} must be a UUID`);
}

function parseBody(text: string): Record<string, unknown> | string {
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value === 'object' && value !== null && !Array.isArray(value))
      return value as Record<string, unknown>;
  } catch {
    // answered below
  }
  return 'the body must be a JSON object';
}

/** The body as an object whose names follow the spec (displayName required on creation), or the 400. */
function readNamed(
  text: string,
  requireDisplayName: boolean,
): { body: Record<string, unknown> } | { reply: SimResponse } {
  const body = parseBody(text);
  if (typeof body === 'string') return { reply: message(400, body) };
  if (requireDisplayName && body.displayName === undefined) {
    return { reply: message(400, 'missing required field: displayName') };
  }
  const names = checkNames(body);
  return names ? { reply: message(400, names) } : { body };
}

function checkNames(body: Record<string, unknown>): string | undefined {
  const { displayName, description } = body;
  if (
    displayName !== undefined &&
    (typeof displayName !== 'string' || displayName.length > 32 || !DISPLAY_NAME.test(displayName))
  ) {
    return 'displayName must be 1-32 characters of letters, digits, spaces and "-", starting with a letter or digit';
  }
  if (
    description !== undefined &&
    description !== null &&
    (typeof description !== 'string' || description.length > 1024 || !DESCRIPTION.test(description))
  ) {
    return 'description must be at most 1024 characters of letters, digits, spaces and "-"';
  }
  return undefined;
}

function checkDestinationConfig(value: unknown): DestinationConfig | string {
  if (typeof value !== 'object' || value === null) return 'config is required';
  const config = value as Record<string, unknown>;
  if (config.configType === 'OpenTelemetry') {
    const otel = config.openTelemetry as Record<string, unknown> | undefined;
    if (typeof otel?.uri !== 'string' || otel.uri.length > 1024)
      return 'config.openTelemetry.uri is required';
    const basic = otel.basicAuth as Record<string, unknown> | undefined;
    if (basic !== undefined && (typeof basic.username !== 'string' || typeof basic.password !== 'string')) {
      return 'config.openTelemetry.basicAuth needs username and password';
    }
    if (
      otel.bearerToken !== undefined &&
      (typeof otel.bearerToken !== 'string' || otel.bearerToken.length > 2048)
    ) {
      return 'config.openTelemetry.bearerToken must be 1-2048 characters';
    }
    return {
      configType: 'OpenTelemetry',
      openTelemetry: {
        uri: otel.uri,
        ...(typeof otel.bearerToken === 'string' ? { bearerToken: otel.bearerToken } : {}),
        ...(basic
          ? { basicAuth: { username: basic.username as string, password: basic.password as string } }
          : {}),
      },
      ...(config.filter !== undefined ? { filter: config.filter } : {}),
    };
  }
  if (config.configType === 'S3') {
    const s3 = config.s3 as Record<string, unknown> | undefined;
    if (
      typeof s3?.endpoint !== 'string' ||
      typeof s3.bucket !== 'string' ||
      s3.bucket.length < 3 ||
      s3.bucket.length > 63
    ) {
      return 'config.s3 needs endpoint and a bucket of 3-63 characters';
    }
    return { configType: 'S3', s3: { endpoint: s3.endpoint, bucket: s3.bucket, accessKey: s3.accessKey } };
  }
  return 'config.configType must be OpenTelemetry or S3';
}

/** `pageToken`/`pageSize` paging: the token is opaque (an offset here), a bad one is a 400. */
function page<T>(
  ctx: RouteContext,
  all: readonly T[],
  field: string,
  render: (item: T) => Record<string, unknown>,
): SimResponse {
  const q = ctx.url.searchParams;
  const sizeText = q.get('pageSize');
  const size = sizeText === null ? 10 : Number(sizeText);
  if (!Number.isInteger(size) || size < 1 || size > 100) return message(400, 'pageSize must be 1-100');
  const tokenText = q.get('pageToken');
  let offset = 0;
  if (tokenText !== null && tokenText !== '') {
    const decoded = /^o(\d+)$/.exec(Buffer.from(tokenText, 'base64url').toString('utf8'));
    if (!decoded) return message(400, 'invalid pageToken');
    offset = Number(decoded[1]);
  }
  const items = all.slice(offset, offset + size).map(render);
  const next =
    offset + size < all.length ? Buffer.from(`o${offset + size}`).toString('base64url') : undefined;
  return json(200, { [field]: items, ...(next ? { nextPageToken: next } : {}) });
}
