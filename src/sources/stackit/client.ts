import type { Logger } from 'pino';
import { HttpClient } from '../../http/client.ts';
import { TransportError } from '../../http/errors.ts';
import { backoffDelayMs, parseRetryAfter, sleep } from '../../http/retry.ts';
import type { ScopeRef } from '../../pipeline/envelope.ts';
import { VERSION } from '../../version.ts';
import { ProviderError, reasonForStatus } from '../errors.ts';
import type { RequestSample } from '../source.ts';
import { PAGE_LIMIT, type StackitProviderSettings } from './config.ts';
import type { TimeWindow } from './windows.ts';

const COLLECTION: Record<string, string> = {
  organization: 'organizations',
  folder: 'folders',
  project: 'projects',
};
const MAX_RETRY_AFTER_MS = 5 * 60_000;

export interface ClientDeps {
  readonly providerName: string;
  readonly instanceId: string;
  readonly onRequest: (sample: RequestSample) => void;
}

/**
 * Talks to one Audit Log API endpoint with one credential: builds the list request, retries what is
 * worth retrying within a poll (429 honouring Retry-After, 5xx, timeouts, network errors) and turns
 * everything else into a ProviderError that names the provider, scope, status and request.
 */
export class AuditLogClient {
  readonly #settings: StackitProviderSettings;
  readonly #deps: ClientDeps;
  readonly #http: HttpClient;
  readonly #base: URL;

  constructor(settings: StackitProviderSettings, deps: ClientDeps) {
    this.#settings = settings;
    this.#deps = deps;
    this.#base = new URL(
      settings.auditLogUrl.endsWith('/') ? settings.auditLogUrl : `${settings.auditLogUrl}/`,
    );
    this.#http = new HttpClient({
      name: `stackit provider "${deps.providerName}" audit log`,
      origin: this.#base.origin,
      timeoutMs: settings.requestTimeout,
      userAgent: `auditlog-shipper/${VERSION} (instance ${deps.instanceId})`,
      tls: settings.tls,
    });
  }

  /** Fetches one page of a window; returns the raw body for byte-exact item extraction. */
  async fetchPage(
    scope: ScopeRef,
    window: TimeWindow,
    cursor: string | undefined,
    signal: AbortSignal,
    log: Logger,
  ): Promise<string> {
    const url = new URL(`v2/${COLLECTION[scope.kind]}/${encodeURIComponent(scope.id)}`, this.#base);
    url.searchParams.set('start-time-range', new Date(window.startMs).toISOString());
    url.searchParams.set('end-time-range', new Date(window.endMs).toISOString());
    url.searchParams.set('limit', String(PAGE_LIMIT));
    if (cursor !== undefined) url.searchParams.set('cursor', cursor);
    const what = `stackit ${scope.kind} ${scope.id}`;

    const { attempts, initialBackoff, maxBackoff } = this.#settings.retry;
    for (let attempt = 1; ; attempt++) {
      const error = await this.#tryOnce(url, what, signal);
      if (typeof error === 'string') return error;
      if (!error.retryable || attempt >= attempts) throw error;
      const waitMs =
        error.retryAfterMs ?? backoffDelayMs(attempt - 1, { initialMs: initialBackoff, maxMs: maxBackoff });
      log.warn(
        { reason: error.reason, status: error.status, attempt, waitMs },
        `${error.message}; retrying in ${waitMs} ms (attempt ${attempt} of ${attempts})`,
      );
      await sleep(waitMs, signal);
    }
  }

  /** One request: the body on 200, otherwise the classified error (returned, so the loop decides). */
  async #tryOnce(url: URL, what: string, signal: AbortSignal): Promise<string | ProviderError> {
    const started = performance.now();
    const request = `GET ${url.origin}${url.pathname}`;
    try {
      const response = await this.#http.send({
        url,
        headers: {
          authorization: `Bearer ${this.#settings.auth.token.reveal()}`,
          accept: 'application/json',
        },
        signal,
      });
      this.#observe(response.status, started);
      if (response.status === 200) return response.body;
      const { reason, retryable } = reasonForStatus(response.status);
      return new ProviderError({
        provider: 'stackit',
        reason,
        status: response.status,
        retryable,
        retryAfterMs: parseRetryAfter(response.headers['retry-after'], Date.now(), MAX_RETRY_AFTER_MS),
        message: `${what}: HTTP ${response.status} from ${request}${providerMessage(response.body)}`,
      });
    } catch (error) {
      this.#observe(0, started);
      if (error instanceof TransportError) {
        if (error.failure === 'aborted') throw error;
        return new ProviderError({
          provider: 'stackit',
          reason: error.failure === 'too_large' ? 'too_large' : error.failure,
          retryable: error.retryable,
          message: `${what}: ${error.message}`,
          cause: error,
        });
      }
      throw error;
    }
  }

  #observe(status: number, started: number): void {
    this.#deps.onRequest({
      provider: 'stackit',
      api: 'auditlog',
      status,
      seconds: (performance.now() - started) / 1000,
    });
  }

  async close(): Promise<void> {
    await this.#http.close();
  }
}

/** The `message` of a STACKIT error body, if there is one; bounded so a proxy's HTML page stays out of logs. */
function providerMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    if (typeof parsed.message === 'string') return `: ${parsed.message.slice(0, 300)}`;
  } catch {
    // not JSON: fall through
  }
  return '';
}
