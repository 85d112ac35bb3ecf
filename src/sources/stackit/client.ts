import type { Logger } from 'pino';
import type { Lane } from '../../http/rate-budget.ts';
import type { ScopeRef } from '../../pipeline/envelope.ts';
import type { StackitApi } from './api.ts';
import { PAGE_LIMIT } from './config.ts';
import type { TimeWindow } from './windows.ts';

const COLLECTION: Record<string, string> = {
  organization: 'organizations',
  folder: 'folders',
  project: 'projects',
};

/**
 * The Audit Log API's one operation: a page of a scope's entries in a time window
 * (`GET /v2/{organizations|folders|projects}/{id}`). Auth, budget and retries live in StackitApi.
 */
export class AuditLogClient {
  readonly #api: StackitApi;

  constructor(api: StackitApi) {
    this.#api = api;
  }

  /** Fetches one page of a window; returns the raw body for byte-exact item extraction. */
  fetchPage(
    scope: ScopeRef,
    window: TimeWindow,
    cursor: string | undefined,
    lane: Lane,
    signal: AbortSignal,
    log: Logger,
  ): Promise<Buffer> {
    const url = new URL(`v2/${COLLECTION[scope.kind]}/${encodeURIComponent(scope.id)}`, this.#api.base);
    url.searchParams.set('start-time-range', new Date(window.startMs).toISOString());
    url.searchParams.set('end-time-range', new Date(window.endMs).toISOString());
    url.searchParams.set('limit', String(PAGE_LIMIT));
    if (cursor !== undefined) url.searchParams.set('cursor', cursor);
    return this.#api.getBytes(url, `stackit ${scope.kind} ${scope.id}`, lane, signal, log);
  }

  close(): Promise<void> {
    return this.#api.close();
  }
}
