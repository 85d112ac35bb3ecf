import type { Logger } from 'pino';
import type { z } from 'zod';
import { ProviderError } from '../../errors.ts';
import type { StackitApi } from '../api.ts';
import { parseResponse } from './response.ts';
import {
  accessTokenListSchema,
  createdAccessTokenSchema,
  type Destination,
  destinationListSchema,
  destinationSchema,
  type OpenTelemetryDestinationConfig,
  type RouterAccessToken,
  routerListSchema,
  type TelemetryRegion,
  type TelemetryRouter,
  telemetryRouterSchema,
} from './schemas.ts';

/** The API's largest page. */
const PAGE_SIZE = 100;
/** Guard against a nextPageToken that never ends. */
const MAX_PAGES = 1_000;

export interface RouterLocation {
  readonly projectId: string;
  readonly region: TelemetryRegion;
}

export interface NamedRequest {
  readonly displayName: string;
  readonly description?: string;
}

/**
 * The Telemetry Router API (`telemetry-router.api.stackit.cloud`): routers of a project and region,
 * their destinations and access tokens, under `/v1/projects/{projectId}/regions/{region}/telemetry-routers`.
 * Lists are read to the end through `pageToken`/`pageSize`. Creations are POSTs, which StackitApi does not
 * retry after a 5xx (the resource may exist): the caller lists again before it creates again.
 */
export class TelemetryRouterClient {
  readonly #api: StackitApi;

  constructor(api: StackitApi) {
    this.#api = api;
  }

  listRouters(at: RouterLocation, signal: AbortSignal, log: Logger): Promise<TelemetryRouter[]> {
    return this.#list(
      this.#url(at),
      routerListSchema,
      (p) => p.telemetryRouters,
      `${where(at)}: routers`,
      signal,
      log,
    );
  }

  async createRouter(
    at: RouterLocation,
    request: NamedRequest,
    signal: AbortSignal,
    log: Logger,
  ): Promise<TelemetryRouter> {
    const what = `${where(at)}: create router "${request.displayName}"`;
    const { body } = await this.#api.send(
      { method: 'POST', url: this.#url(at), body: request, expect: [201] },
      what,
      'live',
      signal,
      log,
    );
    return parseResponse(telemetryRouterSchema, body, what);
  }

  listDestinations(
    at: RouterLocation,
    routerId: string,
    signal: AbortSignal,
    log: Logger,
  ): Promise<Destination[]> {
    return this.#list(
      this.#url(at, routerId, 'destinations'),
      destinationListSchema,
      (p) => p.destinations,
      `${where(at)}: destinations of router ${routerId}`,
      signal,
      log,
    );
  }

  async createDestination(
    at: RouterLocation,
    routerId: string,
    request: NamedRequest & { config: OpenTelemetryDestinationConfig },
    signal: AbortSignal,
    log: Logger,
  ): Promise<Destination> {
    const what = `${where(at)}: create destination "${request.displayName}" of router ${routerId}`;
    const { body } = await this.#api.send(
      { method: 'POST', url: this.#url(at, routerId, 'destinations'), body: request, expect: [201] },
      what,
      'live',
      signal,
      log,
    );
    return parseResponse(destinationSchema, body, what);
  }

  async updateDestination(
    at: RouterLocation,
    routerId: string,
    destinationId: string,
    request: NamedRequest & { config: OpenTelemetryDestinationConfig },
    signal: AbortSignal,
    log: Logger,
  ): Promise<Destination> {
    const what = `${where(at)}: destination ${destinationId} of router ${routerId}`;
    const { body } = await this.#api.send(
      {
        method: 'PUT',
        url: this.#url(at, routerId, 'destinations', destinationId),
        body: request,
        expect: [200],
      },
      what,
      'live',
      signal,
      log,
    );
    return parseResponse(destinationSchema, body, what);
  }

  listAccessTokens(
    at: RouterLocation,
    routerId: string,
    signal: AbortSignal,
    log: Logger,
  ): Promise<RouterAccessToken[]> {
    return this.#list(
      this.#url(at, routerId, 'access-tokens'),
      accessTokenListSchema,
      (p) => p.accessTokens,
      `${where(at)}: access tokens of router ${routerId}`,
      signal,
      log,
    );
  }

  /** A new access token; its value is in this answer only. */
  async createAccessToken(
    at: RouterLocation,
    routerId: string,
    request: NamedRequest & { ttl?: number },
    signal: AbortSignal,
    log: Logger,
  ): Promise<z.infer<typeof createdAccessTokenSchema>> {
    const what = `${where(at)}: create access token "${request.displayName}" of router ${routerId}`;
    const { body } = await this.#api.send(
      { method: 'POST', url: this.#url(at, routerId, 'access-tokens'), body: request, expect: [201] },
      what,
      'live',
      signal,
      log,
    );
    return parseResponse(createdAccessTokenSchema, body, what);
  }

  close(): Promise<void> {
    return this.#api.close();
  }

  #url(at: RouterLocation, ...rest: string[]): URL {
    const tail = rest.map((part) => `/${encodeURIComponent(part)}`).join('');
    return new URL(
      `v1/projects/${encodeURIComponent(at.projectId)}/regions/${at.region}/telemetry-routers${tail}`,
      this.#api.base,
    );
  }

  async #list<S extends z.ZodType, T>(
    base: URL,
    schema: S,
    items: (page: z.output<S>) => T[],
    what: string,
    signal: AbortSignal,
    log: Logger,
  ): Promise<T[]> {
    const out: T[] = [];
    const seen = new Set<string>();
    let token: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const url = new URL(base);
      url.searchParams.set('pageSize', String(PAGE_SIZE));
      if (token !== undefined) url.searchParams.set('pageToken', token);
      const { body } = await this.#api.send({ method: 'GET', url, expect: [200] }, what, 'live', signal, log);
      const parsed = parseResponse(schema, body, what);
      out.push(...items(parsed));
      token = (parsed as { nextPageToken?: string }).nextPageToken || undefined;
      if (token === undefined) return out;
      if (seen.has(token)) break;
      seen.add(token);
    }
    throw new ProviderError({
      provider: 'stackit',
      reason: 'pagination_loop',
      retryable: false,
      message: `${what}: the API keeps returning a nextPageToken (repeated or more than ${MAX_PAGES} pages)`,
    });
  }
}

function where(at: RouterLocation): string {
  return `telemetry-router API: project ${at.projectId} in ${at.region}`;
}
