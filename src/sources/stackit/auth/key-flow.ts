import type { Logger } from 'pino';
import { z } from 'zod';
import { HttpClient, type TlsOptions } from '../../../http/client.ts';
import { safeUrl } from '../../../http/errors.ts';
import { ProviderError, reasonForStatus } from '../../errors.ts';
import { retryAfterMs, transportFailure } from '../../provider-request.ts';
import type { RequestSample } from '../../source.ts';
import { errorMessageOf } from '../error-body.ts';
import { jwtExpiryMs, signAssertion } from './jwt.ts';
import type { ServiceAccountKey } from './service-account-key.ts';
import type { AccessTokenSource } from './token-source.ts';

const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** Renew this long before a token expires (research/providers.md §2.4), or half its life if shorter. */
const RENEW_BEFORE_MS = 5 * 60_000;
/** A token is not handed out in its last seconds: a request must still reach the API before it expires. */
const EXPIRY_SAFETY_MS = 5_000;
const KEY_NOT_FOUND = /Key with kid .*? was not found/i;

/** The token endpoint's answer (`CreateShortLivedAccessTokenResponse`); only what is used is required. */
const tokenResponseSchema = z.object({
  access_token: z.string().min(1),
  expires_in: z.number().positive().optional(),
  token_type: z.string().optional(),
});

export interface KeyFlowOptions {
  readonly providerName: string;
  readonly key: ServiceAccountKey;
  readonly tokenEndpoint: string;
  readonly timeoutMs: number;
  readonly userAgent: string;
  readonly tls?: TlsOptions;
  readonly log: Logger;
  readonly onRequest: (sample: RequestSample) => void;
  readonly now?: () => number;
}

interface CachedToken {
  readonly token: string;
  /** From here on a new token is minted in the background while this one is still handed out. */
  readonly renewAtMs: number;
  /** From here on callers wait for a new token. */
  readonly usableUntilMs: number;
}

/**
 * STACKIT's service-account key flow: sign an RS512 assertion with the key, exchange it at the token
 * endpoint for a short-lived access token, cache that, and mint the next one before it expires. All
 * callers share one mint in flight. The token endpoint has its own HTTP client, so the assertion only
 * ever travels to the endpoint's origin, and the audit-log token only to the API's.
 */
export class KeyFlowTokenSource implements AccessTokenSource {
  readonly credentialId: string;
  readonly description: string;
  readonly #o: KeyFlowOptions;
  readonly #http: HttpClient;
  readonly #endpoint: URL;
  readonly #now: () => number;
  readonly #closed = new AbortController();
  #cached: CachedToken | undefined;
  #inflight: Promise<CachedToken> | undefined;

  constructor(options: KeyFlowOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#endpoint = new URL(options.tokenEndpoint);
    this.credentialId = `sa-${options.key.sub}`;
    this.description = `service account ${options.key.iss} (key ${options.key.kid})`;
    this.#http = new HttpClient({
      name: `stackit provider "${options.providerName}" token endpoint`,
      origin: this.#endpoint.origin,
      timeoutMs: options.timeoutMs,
      maxBodyBytes: 1024 * 1024,
      userAgent: options.userAgent,
      ...(options.tls ? { tls: options.tls } : {}),
    });
  }

  async token(signal: AbortSignal): Promise<string> {
    const now = this.#now();
    const cached = this.#cached;
    if (cached !== undefined && now < cached.renewAtMs) return cached.token;
    if (cached !== undefined && now < cached.usableUntilMs) {
      // Still good for a while: renew in the background, nobody waits.
      this.#mintOnce().catch((error: unknown) =>
        this.#o.log.warn(
          { reason: error instanceof ProviderError ? error.reason : undefined },
          `renewing the access token failed, the current one is used until it expires: ${(error as Error).message}`,
        ),
      );
      return cached.token;
    }
    return (await abortable(this.#mintOnce(), signal)).token;
  }

  invalidate(token: string): boolean {
    if (this.#cached?.token === token) this.#cached = undefined;
    return true;
  }

  async close(): Promise<void> {
    this.#closed.abort(new Error('closed'));
    await this.#http.close();
  }

  /** The mint in flight, or a new one: concurrent callers share it. */
  #mintOnce(): Promise<CachedToken> {
    this.#inflight ??= this.#mint().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #mint(): Promise<CachedToken> {
    const { key, providerName } = this.#o;
    const where = `stackit provider "${providerName}": token endpoint ${safeUrl(this.#endpoint)}`;
    const body = new URLSearchParams({ grant_type: GRANT_TYPE, assertion: signAssertion(key, this.#now()) });
    const started = performance.now();
    let response: Awaited<ReturnType<HttpClient['send']>>;
    try {
      response = await this.#http.send({
        method: 'POST',
        url: this.#endpoint,
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: body.toString(),
        signal: this.#closed.signal,
      });
    } catch (error) {
      this.#observe(0, started);
      throw transportFailure('stackit', where, error);
    }
    this.#observe(response.status, started);
    if (response.status !== 200) throw this.#refused(response.status, response.body, response.headers, where);

    let parsed: z.infer<typeof tokenResponseSchema>;
    try {
      parsed = tokenResponseSchema.parse(JSON.parse(response.body));
    } catch {
      throw new ProviderError({
        provider: 'stackit',
        reason: 'invalid_response',
        retryable: true,
        message: `${where}: HTTP 200 without a usable access_token (expected {"access_token": …, "expires_in": …})`,
      });
    }
    const now = this.#now();
    const fromExpiresIn = parsed.expires_in === undefined ? undefined : now + parsed.expires_in * 1000;
    const fromJwt = jwtExpiryMs(parsed.access_token);
    const expiresAtMs = Math.min(
      fromExpiresIn ?? Number.POSITIVE_INFINITY,
      fromJwt ?? Number.POSITIVE_INFINITY,
    );
    if (!Number.isFinite(expiresAtMs) || expiresAtMs <= now) {
      throw new ProviderError({
        provider: 'stackit',
        reason: 'invalid_response',
        retryable: true,
        message: `${where}: the access token has no lifetime (no expires_in, no JWT exp) or is already expired`,
      });
    }
    const lifetimeMs = expiresAtMs - now;
    const token: CachedToken = {
      token: parsed.access_token,
      renewAtMs: expiresAtMs - Math.min(RENEW_BEFORE_MS, lifetimeMs / 2),
      usableUntilMs: expiresAtMs - Math.min(EXPIRY_SAFETY_MS, lifetimeMs / 4),
    };
    this.#cached = token;
    this.#o.log.info(
      { kid: key.kid, validForSeconds: Math.round(lifetimeMs / 1000) },
      `access token minted for ${this.description}`,
    );
    return token;
  }

  /** A refusal names the endpoint, the status and the provider's reason; a known cause gets a hint. */
  #refused(
    status: number,
    body: string,
    headers: Readonly<Record<string, string>>,
    where: string,
  ): ProviderError {
    const detail = errorMessageOf(body);
    const { retryable } = reasonForStatus(status);
    if (retryable) {
      return new ProviderError({
        provider: 'stackit',
        reason: status === 429 ? 'rate_limited' : 'server_error',
        status,
        retryable: true,
        retryAfterMs: retryAfterMs(headers),
        message: `${where}: HTTP ${status}${detail ? `: ${detail}` : ''}`,
      });
    }
    const hint = KEY_NOT_FOUND.test(detail ?? '')
      ? 'the key was deleted or deactivated, or the token endpoint belongs to another STACKIT environment than the key'
      : 'check that the key is active and belongs to this service account, and that the clock is right (the assertion is valid for 10 minutes)';
    return new ProviderError({
      provider: 'stackit',
      reason: 'unauthorized',
      status,
      retryable: false,
      message: `${where} refused ${this.description}: HTTP ${status}${detail ? `: ${detail}` : ''}; ${hint}`,
    });
  }

  #observe(status: number, started: number): void {
    this.#o.onRequest({
      provider: 'stackit',
      api: 'token',
      status,
      seconds: (performance.now() - started) / 1000,
    });
  }
}

/** Waits for a shared promise but gives up on this caller's signal (the shared work goes on). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
