import type { Logger } from 'pino';
import type { Secret } from '../../config/secret.ts';
import { HttpClient } from '../../http/client.ts';
import { OriginRefusedError, safeUrl } from '../../http/errors.ts';
import { VERSION } from '../../version.ts';
import { ProviderError, reasonForStatus } from '../errors.ts';
import { backOffOrThrow, retryAfterMs, transportFailure } from '../provider-request.ts';
import type { RequestSample } from '../source.ts';
import type { CloudscaleProviderSettings } from './config.ts';

export interface ClientDeps {
  readonly providerName: string;
  readonly instanceId: string;
  readonly onRequest: (sample: RequestSample) => void;
}

/**
 * Talks to one cloudscale API origin for any number of projects (each request carries its project's
 * token). It builds the first request of a read, vets every URL the API hands back before it is
 * stored or followed (same origin only: the token goes with it), retries what is worth retrying within
 * a poll (503 maintenance, 429, other 5xx, timeouts, network errors; Retry-After honoured), and turns
 * everything else into a ProviderError naming provider, project, status and URL without its query.
 */
export class ProjectLogsClient {
  readonly #settings: CloudscaleProviderSettings;
  readonly #deps: ClientDeps;
  readonly #http: HttpClient;
  readonly #base: URL;

  constructor(settings: CloudscaleProviderSettings, deps: ClientDeps) {
    this.#settings = settings;
    this.#deps = deps;
    this.#base = new URL(settings.apiUrl.endsWith('/') ? settings.apiUrl : `${settings.apiUrl}/`);
    this.#http = new HttpClient({
      name: `cloudscale provider "${deps.providerName}"`,
      origin: this.#base.origin,
      timeoutMs: settings.requestTimeout,
      userAgent: `auditlog-shipper/${VERSION} (instance ${deps.instanceId})`,
      tls: settings.tls,
    });
  }

  get origin(): string {
    return this.#http.origin;
  }

  /** `GET /v1/project-logs?start=…`: everything from `startMs` on (timestamps ≥ start). */
  startUrl(startMs: number): URL {
    const url = new URL('v1/project-logs', this.#base);
    url.searchParams.set('start', new Date(startMs).toISOString());
    return url;
  }

  /**
   * A URL the API handed out (`next`, `poll_more`), or one stored from it, as a URL the token may be
   * sent to. Anything off the configured origin is refused before it is followed or stored.
   */
  vet(url: string, what: string, field: string, base?: URL): URL {
    let parsed: URL;
    try {
      // A relative link resolves against the request it came with (same origin by construction).
      parsed = new URL(url, base);
    } catch {
      throw new ProviderError({
        provider: 'cloudscale',
        reason: 'invalid_response',
        retryable: false,
        message: `${what}: ${field} is not a URL`,
      });
    }
    try {
      return this.#http.assertOrigin(parsed, `${what}: ${field}`);
    } catch (error) {
      if (!(error instanceof OriginRefusedError)) throw error;
      throw new ProviderError({
        provider: 'cloudscale',
        reason: 'origin_refused',
        retryable: false,
        message: `${error.message}; the project's token was not sent, nothing of this page was committed`,
        cause: error,
      });
    }
  }

  /** Fetches one page; returns the raw body for byte-exact entry extraction. */
  async fetchPage(url: URL, token: Secret, what: string, signal: AbortSignal, log: Logger): Promise<Buffer> {
    for (let attempt = 1; ; attempt++) {
      const result = await this.#tryOnce(url, token, what, signal);
      if (Buffer.isBuffer(result)) return result;
      await backOffOrThrow(result, attempt, this.#settings.retry, signal, log);
    }
  }

  /** One request: the body on 200, otherwise the classified error (returned, so the loop decides). */
  async #tryOnce(
    url: URL,
    token: Secret,
    what: string,
    signal: AbortSignal,
  ): Promise<Buffer | ProviderError> {
    const started = performance.now();
    const request = `GET ${safeUrl(url)}`;
    try {
      const response = await this.#http.send({
        url,
        headers: { authorization: `Bearer ${token.reveal()}`, accept: 'application/json' },
        signal,
      });
      this.#observe(response.status, started);
      if (response.status === 200) return response.bytes;
      const classified = reasonForStatus(response.status);
      // The token implies the project, so a 404 never means "scope gone" (a deleted project's token
      // stops authenticating: 401); it is a path or cursor the API does not know.
      const { reason, retryable } =
        response.status === 404 ? { reason: 'bad_request' as const, retryable: false } : classified;
      const maintenance = response.status === 503 ? ' (maintenance)' : '';
      return new ProviderError({
        provider: 'cloudscale',
        reason,
        status: response.status,
        retryable,
        retryAfterMs: retryAfterMs(response.headers),
        message: `${what}: HTTP ${response.status}${maintenance} from ${request}${providerDetail(response.body)}`,
      });
    } catch (error) {
      this.#observe(0, started);
      return transportFailure('cloudscale', what, error);
    }
  }

  #observe(status: number, started: number): void {
    this.#deps.onRequest({
      provider: 'cloudscale',
      api: 'project-logs',
      status,
      seconds: (performance.now() - started) / 1000,
    });
  }

  async close(): Promise<void> {
    await this.#http.close();
  }
}

/** The `detail` of a cloudscale (Django REST framework) error body; bounded, so a proxy page stays out of logs. */
function providerDetail(body: string): string {
  try {
    const parsed = JSON.parse(body) as { detail?: unknown; message?: unknown };
    const detail = typeof parsed.detail === 'string' ? parsed.detail : parsed.message;
    if (typeof detail === 'string') return `: ${detail.slice(0, 300)}`;
  } catch {
    // not JSON: fall through
  }
  return '';
}
