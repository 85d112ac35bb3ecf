import type { Logger } from 'pino';
import type { StackitApi } from '../api.ts';
import { parseResponse } from './response.ts';
import {
  type LinkLevel,
  type TelemetryLink,
  type TelemetryLinkRequest,
  type TelemetryRegion,
  telemetryLinkSchema,
} from './schemas.ts';

const COLLECTION: Record<LinkLevel, string> = {
  organization: 'organizations',
  folder: 'folders',
  project: 'projects',
};

export interface LinkTarget {
  readonly level: LinkLevel;
  readonly id: string;
  readonly region: TelemetryRegion;
}

/**
 * The Telemetry Link API (`telemetry-link.api.stackit.cloud`): one link per organization, folder or
 * project and region, `PUT|GET|PATCH|DELETE /v1/{level}s/{id}/regions/{region}/telemetry-link`. Auth,
 * retries and error messages (API, status, resource) come from StackitApi.
 */
export class TelemetryLinkClient {
  readonly #api: StackitApi;

  constructor(api: StackitApi) {
    this.#api = api;
  }

  /** The link of a level in a region, or undefined when it has none (404). */
  async get(target: LinkTarget, signal: AbortSignal, log: Logger): Promise<TelemetryLink | undefined> {
    const what = describeLink(target);
    const { status, body } = await this.#api.send(
      { method: 'GET', url: this.#url(target), expect: [200, 404] },
      what,
      'live',
      signal,
      log,
    );
    return status === 404 ? undefined : parseResponse(telemetryLinkSchema, body, what);
  }

  /** Creates or replaces the link (PUT is idempotent, so a retried request does no harm). */
  async put(
    target: LinkTarget,
    request: TelemetryLinkRequest,
    signal: AbortSignal,
    log: Logger,
  ): Promise<TelemetryLink> {
    const what = describeLink(target);
    const { body } = await this.#api.send(
      { method: 'PUT', url: this.#url(target), body: request, expect: [200, 201] },
      what,
      'live',
      signal,
      log,
    );
    return parseResponse(telemetryLinkSchema, body, what);
  }

  async patch(
    target: LinkTarget,
    request: Partial<TelemetryLinkRequest>,
    signal: AbortSignal,
    log: Logger,
  ): Promise<TelemetryLink> {
    const what = describeLink(target);
    const { body } = await this.#api.send(
      { method: 'PATCH', url: this.#url(target), body: request, expect: [200] },
      what,
      'live',
      signal,
      log,
    );
    return parseResponse(telemetryLinkSchema, body, what);
  }

  /** Deletes the link; one that is already gone counts as deleted. */
  async delete(target: LinkTarget, signal: AbortSignal, log: Logger): Promise<void> {
    await this.#api.send(
      { method: 'DELETE', url: this.#url(target), expect: [204, 404] },
      describeLink(target),
      'live',
      signal,
      log,
    );
  }

  close(): Promise<void> {
    return this.#api.close();
  }

  #url(target: LinkTarget): URL {
    const path = `v1/${COLLECTION[target.level]}/${encodeURIComponent(target.id)}/regions/${target.region}/telemetry-link`;
    return new URL(path, this.#api.base);
  }
}

export function describeLink(target: LinkTarget): string {
  return `telemetry-link API: link of ${target.level} ${target.id} in ${target.region}`;
}
