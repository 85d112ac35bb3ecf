import type { Logger } from 'pino';
import { HttpClient, type TlsOptions } from '../../http/client.ts';
import { BudgetPausedError, type Lane, type RateBucket } from '../../http/rate-budget.ts';
import { VERSION } from '../../version.ts';
import { ProviderError, reasonForStatus } from '../errors.ts';
import {
  backOffOrThrow,
  MAX_IN_POLL_WAIT_MS,
  type RetryPolicy,
  retryAfterMs,
  transportFailure,
} from '../provider-request.ts';
import type { RequestSample } from '../source.ts';
import type { AccessTokenSource } from './auth/token-source.ts';
import { errorMessageOf } from './error-body.ts';

/** A request to a STACKIT API: the statuses that count as an answer (anything else is an error). */
export interface ApiCall {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly url: URL;
  /** Sent as JSON. */
  readonly body?: unknown;
  readonly expect: readonly number[];
}

/** An expected answer: its status, and its body as text and as the exact bytes received. */
export interface ApiAnswer {
  readonly status: number;
  readonly body: string;
  readonly bytes: Buffer;
}

export interface StackitApiOptions {
  readonly providerName: string;
  /** `auditlog`, `resource-manager`: the metric label and part of messages. */
  readonly api: string;
  /** Base URL; the client talks to its origin only. */
  readonly baseUrl: string;
  readonly instanceId: string;
  readonly timeoutMs: number;
  readonly tls?: TlsOptions;
  readonly auth: AccessTokenSource;
  /** Shared request budget of this credential at this API (none: unlimited, e.g. in unit tests). */
  readonly bucket?: RateBucket | undefined;
  readonly retry: RetryPolicy;
  readonly onRequest: (sample: RequestSample) => void;
}

/**
 * One STACKIT API with one credential: GETs that go through the credential's shared request budget,
 * carry a bearer token from the token source, and are retried when worth it. A 401 is answered once by
 * minting a fresh token (a revoked or expired one is the usual cause); a second 401 fails loudly. A 429
 * pauses the whole budget (every replica) instead of hammering. Everything else that fails becomes a
 * ProviderError naming provider, API, status and request.
 */
export class StackitApi {
  readonly base: URL;
  readonly #o: StackitApiOptions;
  readonly #http: HttpClient;

  constructor(options: StackitApiOptions) {
    this.#o = options;
    this.base = new URL(options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`);
    this.#http = new HttpClient({
      name: `stackit provider "${options.providerName}" ${options.api}`,
      origin: this.base.origin,
      timeoutMs: options.timeoutMs,
      userAgent: `auditlog-shipper/${VERSION} (instance ${options.instanceId})`,
      ...(options.tls ? { tls: options.tls } : {}),
    });
  }

  /** GETs `url` (on the base's origin) and returns the body of a 200. `what` names the target in messages. */
  async get(url: URL, what: string, lane: Lane, signal: AbortSignal, log: Logger): Promise<string> {
    return (await this.send({ method: 'GET', url, expect: [200] }, what, lane, signal, log)).body;
  }

  /** `get`, returning the body's exact bytes (audit entries are kept as sent, invalid UTF-8 included). */
  async getBytes(url: URL, what: string, lane: Lane, signal: AbortSignal, log: Logger): Promise<Buffer> {
    return (await this.send({ method: 'GET', url, expect: [200] }, what, lane, signal, log)).bytes;
  }

  /**
   * One API call: its status must be one of `expect`, otherwise it fails as a ProviderError. A
   * non-idempotent call (POST) is retried only after a 429, which STACKIT sends before doing anything:
   * after a 5xx or a timeout the resource may exist, and the caller must look before trying again.
   */
  async send(call: ApiCall, what: string, lane: Lane, signal: AbortSignal, log: Logger): Promise<ApiAnswer> {
    const { attempts } = this.#o.retry;
    const idempotent = call.method !== 'POST';
    let reminted = false;
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.#tryOnce(call, what, lane, signal);
      if ('status' in outcome) return outcome;
      const { error, token } = outcome;

      if (error.status === 401) {
        if (!reminted && token !== undefined && this.#o.auth.invalidate(token)) {
          // Expired early, revoked, or the key rotated: one fresh token, right away.
          reminted = true;
          attempt--;
          log.warn(
            { status: 401 },
            `${what}: HTTP 401 for the access token of ${this.#o.auth.description}; minting a new one and retrying once`,
          );
          continue;
        }
        throw new ProviderError({
          provider: 'stackit',
          reason: 'unauthorized',
          status: 401,
          retryable: false,
          message: reminted
            ? `${error.message}; refused again with a freshly minted token of ${this.#o.auth.description}: the service account lacks access (role audit-log.reader / resource-manager reader) or was disabled`
            : `${error.message}; ${this.#o.auth.description} was refused (static tokens expire and are deprecated by STACKIT: use a service-account key)`,
        });
      }

      if (error.status === 429 && this.#o.bucket !== undefined) {
        // Every replica waits: the next take() of this bucket blocks until the pause ends.
        const { pauseMs, strikes } = await this.#o.bucket.pause(error.retryAfterMs);
        // A long pause is sat out without a worker slot: the poll ends and the scope waits (see
        // MAX_IN_POLL_WAIT_MS); the budget keeps every replica from asking before it is over.
        if (attempt >= attempts || pauseMs > MAX_IN_POLL_WAIT_MS) throw error.waitingFor(pauseMs);
        log.warn(
          { status: 429, pauseMs, strikes, attempt, retryAfterMs: error.retryAfterMs },
          `${error.message}; the request budget of ${this.#o.auth.credentialId} pauses ${pauseMs} ms (attempt ${attempt} of ${attempts})`,
        );
        continue;
      }

      if (!idempotent && error.status !== 429) throw error;
      await backOffOrThrow(error, attempt, this.#o.retry, signal, log);
    }
  }

  /** One request: status and body when expected, otherwise the classified error and the token it used. */
  async #tryOnce(
    call: ApiCall,
    what: string,
    lane: Lane,
    signal: AbortSignal,
  ): Promise<ApiAnswer | { error: ProviderError; token?: string }> {
    const bucket = this.#o.bucket;
    if (bucket) {
      try {
        await bucket.take(lane, signal, MAX_IN_POLL_WAIT_MS);
      } catch (error) {
        if (!(error instanceof BudgetPausedError)) throw error;
        // Sat out without a worker: the poll ends and the scope waits (see MAX_IN_POLL_WAIT_MS).
        return {
          error: new ProviderError({
            provider: 'stackit',
            reason: 'rate_limited',
            retryable: false,
            retryAfterMs: error.waitMs,
            message: `${what}: ${error.message} (another request of ${this.#o.auth.credentialId} was refused)`,
          }),
        };
      }
    }
    let token: string;
    try {
      token = await this.#o.auth.token(signal);
    } catch (error) {
      if (error instanceof ProviderError) return { error };
      throw error;
    }
    const started = performance.now();
    const { url } = call;
    const request = `${call.method} ${url.origin}${url.pathname}`;
    try {
      const response = await this.#http.send({
        method: call.method,
        url,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(call.body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(call.body !== undefined ? { body: JSON.stringify(call.body) } : {}),
        signal,
      });
      this.#observe(response.status, started);
      if (response.status !== 429) await bucket?.succeeded();
      if (call.expect.includes(response.status)) {
        return { status: response.status, body: response.body, bytes: response.bytes };
      }
      const classified = reasonForStatus(response.status);
      const detail = errorMessageOf(response.body);
      // The API answers a missing scope with its JSON error; a 404 without one comes from in front of it
      // (the route is gone), which is how a retired Audit Log API v2 is expected to look, like a 410.
      // Only here: other APIs use 410 for other things (cloudscale: an expired cursor).
      const retired = response.status === 410 || (response.status === 404 && detail === undefined);
      const { reason, retryable } =
        retired && this.#o.api === 'auditlog'
          ? { reason: 'api_retired' as const, retryable: false }
          : classified;
      return {
        token,
        error: new ProviderError({
          provider: 'stackit',
          reason,
          status: response.status,
          retryable,
          retryAfterMs: retryAfterMs(response.headers),
          message: `${what}: HTTP ${response.status} from ${request}${detail ? `: ${detail}` : ''}`,
        }),
      };
    } catch (error) {
      this.#observe(0, started);
      return { error: transportFailure('stackit', what, error) };
    }
  }

  #observe(status: number, started: number): void {
    this.#o.onRequest({
      provider: 'stackit',
      api: this.#o.api,
      status,
      seconds: (performance.now() - started) / 1000,
    });
  }

  async close(): Promise<void> {
    await this.#http.close();
  }
}
