import type { Logger } from 'pino';
import { z } from 'zod';
import { registerSecretValue } from '../../../config/redact.ts';
import { HttpClient, type HttpResponse, type TlsOptions } from '../../../http/client.ts';
import { safeUrl } from '../../../http/errors.ts';
import { ProviderError, reasonForStatus } from '../../errors.ts';
import { retryAfterMs, transportFailure } from '../../provider-request.ts';
import type { RequestSample } from '../../source.ts';
import { errorMessageOf } from '../error-body.ts';
import { jwtExpiryMs } from './jwt.ts';

/** Form fields of a token exchange that carry credentials (`assertion`, `subject_token`, …). */
const CREDENTIAL_FIELD =
  /^(assertion|client_assertion|subject_token|actor_token|client_secret|password|refresh_token)$/;

/** Renew this long before a token expires (research/providers.md §2.4), or half its life if shorter. */
const RENEW_BEFORE_MS = 5 * 60_000;
/** A token is not handed out in its last seconds: a request must still reach the API before it expires. */
const EXPIRY_SAFETY_MS = 5_000;

/** A token endpoint's answer (`CreateShortLivedAccessTokenResponse`); only what is used is required. */
const tokenResponseSchema = z.object({
  access_token: z.string().min(1),
  expires_in: z.number().positive().optional(),
  token_type: z.string().optional(),
});

export interface TokenEndpointOptions {
  readonly providerName: string;
  readonly url: string;
  readonly timeoutMs: number;
  readonly userAgent: string;
  readonly tls?: TlsOptions | undefined;
  readonly onRequest: (sample: RequestSample) => void;
  readonly now: () => number;
}

export interface MintedToken {
  readonly token: string;
  readonly expiresAtMs: number;
}

/**
 * One STACKIT token endpoint (the key flow's `/token`, the federated flow's `/oauth/v2/token`): POSTs a
 * form and returns the access token with its expiry. It has its own HTTP client, so what is exchanged
 * (an assertion, a federated token) only ever travels to the endpoint's origin. A refusal becomes a
 * ProviderError naming the provider, the endpoint and the status; the caller adds the hint.
 */
export class TokenEndpoint {
  readonly where: string;
  readonly #o: TokenEndpointOptions;
  readonly #url: URL;
  readonly #http: HttpClient;
  readonly #closed = new AbortController();

  constructor(options: TokenEndpointOptions) {
    this.#o = options;
    this.#url = new URL(options.url);
    this.where = `stackit provider "${options.providerName}": token endpoint ${safeUrl(this.#url)}`;
    this.#http = new HttpClient({
      name: `stackit provider "${options.providerName}" token endpoint`,
      origin: this.#url.origin,
      timeoutMs: options.timeoutMs,
      maxBodyBytes: 1024 * 1024,
      userAgent: options.userAgent,
      ...(options.tls ? { tls: options.tls } : {}),
    });
  }

  /**
   * Exchanges `form` for an access token. A non-retryable refusal names `who` (the credential, never its
   * value) and ends with `hint(detail)`, what to check given the endpoint's reason.
   */
  async exchange(
    form: URLSearchParams,
    who: string,
    hint: (detail: string | undefined) => string,
  ): Promise<MintedToken> {
    // What is exchanged (a signed assertion, a workload identity token) buys access tokens for its
    // lifetime: masked wherever an endpoint or a proxy might echo it. Grant types and ids are not secrets.
    for (const [name, value] of form) if (CREDENTIAL_FIELD.test(name)) registerSecretValue(value);
    const started = performance.now();
    let response: HttpResponse;
    try {
      response = await this.#http.send({
        method: 'POST',
        url: this.#url,
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form.toString(),
        signal: this.#closed.signal,
      });
    } catch (error) {
      this.#observe(0, started);
      throw transportFailure('stackit', this.where, error);
    }
    this.#observe(response.status, started);
    if (response.status !== 200) throw this.#refused(response, who, hint);

    let parsed: z.infer<typeof tokenResponseSchema>;
    try {
      parsed = tokenResponseSchema.parse(JSON.parse(response.body));
    } catch {
      throw new ProviderError({
        provider: 'stackit',
        reason: 'invalid_response',
        retryable: true,
        message: `${this.where}: HTTP 200 without a usable access_token (expected {"access_token": …, "expires_in": …})`,
      });
    }
    registerSecretValue(parsed.access_token);
    const now = this.#o.now();
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
        message: `${this.where}: the access token has no lifetime (no expires_in, no JWT exp) or is already expired`,
      });
    }
    return { token: parsed.access_token, expiresAtMs };
  }

  async close(): Promise<void> {
    this.#closed.abort(new Error('closed'));
    await this.#http.close();
  }

  /** A refusal names the endpoint, the status and the provider's reason (JWT-shaped text masked). */
  #refused(response: HttpResponse, who: string, hint: (detail: string | undefined) => string): ProviderError {
    const { status } = response;
    const detail = errorMessageOf(response.body);
    const { retryable } = reasonForStatus(status);
    if (retryable) {
      return new ProviderError({
        provider: 'stackit',
        reason: status === 429 ? 'rate_limited' : 'server_error',
        status,
        retryable: true,
        retryAfterMs: retryAfterMs(response.headers),
        message: `${this.where}: HTTP ${status}${detail ? `: ${detail}` : ''}`,
      });
    }
    return new ProviderError({
      provider: 'stackit',
      reason: 'unauthorized',
      status,
      retryable: false,
      message: `${this.where} refused ${who}: HTTP ${status}${detail ? `: ${detail}` : ''}; ${hint(detail)}`,
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

interface CachedToken {
  readonly token: string;
  /** From here on a new token is minted in the background while this one is still handed out. */
  readonly renewAtMs: number;
  /** From here on callers wait for a new token. */
  readonly usableUntilMs: number;
}

/**
 * A short-lived access token, cached and renewed before it expires: from `renewAtMs` on, a new one is
 * minted in the background while the current one is still handed out; all callers share one mint in
 * flight. Both STACKIT flows (key and federated) mint through it.
 */
export class RenewingToken {
  readonly #mint: () => Promise<MintedToken>;
  readonly #now: () => number;
  readonly #log: Logger;
  #cached: CachedToken | undefined;
  #inflight: Promise<CachedToken> | undefined;

  constructor(mint: () => Promise<MintedToken>, now: () => number, log: Logger) {
    this.#mint = mint;
    this.#now = now;
    this.#log = log;
  }

  async token(signal: AbortSignal): Promise<string> {
    const now = this.#now();
    const cached = this.#cached;
    if (cached !== undefined && now < cached.renewAtMs) return cached.token;
    if (cached !== undefined && now < cached.usableUntilMs) {
      // Still good for a while: renew in the background, nobody waits.
      this.#mintOnce().catch((error: unknown) =>
        this.#log.warn(
          { reason: error instanceof ProviderError ? error.reason : undefined },
          `renewing the access token failed, the current one is used until it expires: ${(error as Error).message}`,
        ),
      );
      return cached.token;
    }
    return (await abortable(this.#mintOnce(), signal)).token;
  }

  /** Forgets `token` if it is the cached one (an API refused it). */
  invalidate(token: string): void {
    if (this.#cached?.token === token) this.#cached = undefined;
  }

  /** The mint in flight, or a new one: concurrent callers share it. */
  #mintOnce(): Promise<CachedToken> {
    this.#inflight ??= this.#cache().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #cache(): Promise<CachedToken> {
    const minted = await this.#mint();
    const lifetimeMs = minted.expiresAtMs - this.#now();
    const token: CachedToken = {
      token: minted.token,
      renewAtMs: minted.expiresAtMs - Math.min(RENEW_BEFORE_MS, lifetimeMs / 2),
      usableUntilMs: minted.expiresAtMs - Math.min(EXPIRY_SAFETY_MS, lifetimeMs / 4),
    };
    this.#cached = token;
    return token;
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

/** What both STACKIT flows are given: where the token endpoint is and how to reach it. */
export interface ExchangeFlowOptions {
  readonly providerName: string;
  readonly tokenEndpoint: string;
  readonly timeoutMs: number;
  readonly userAgent: string;
  readonly tls?: TlsOptions | undefined;
  readonly log: Logger;
  readonly onRequest: (sample: RequestSample) => void;
  readonly now?: () => number;
}

/**
 * An access-token source whose tokens come from a STACKIT token endpoint: the flows differ only in
 * what they exchange (`mint`); endpoint, caching, renewal and invalidation are the same.
 */
export abstract class ExchangedTokenSource {
  protected readonly endpoint: TokenEndpoint;
  protected readonly now: () => number;
  readonly #token: RenewingToken;

  constructor(options: ExchangeFlowOptions) {
    this.now = options.now ?? Date.now;
    this.endpoint = new TokenEndpoint({
      providerName: options.providerName,
      url: options.tokenEndpoint,
      timeoutMs: options.timeoutMs,
      userAgent: options.userAgent,
      tls: options.tls,
      onRequest: options.onRequest,
      now: this.now,
    });
    this.#token = new RenewingToken(() => this.mint(), this.now, options.log);
  }

  protected abstract mint(): Promise<MintedToken>;

  token(signal: AbortSignal): Promise<string> {
    return this.#token.token(signal);
  }

  invalidate(token: string): boolean {
    this.#token.invalidate(token);
    return true;
  }

  async close(): Promise<void> {
    await this.endpoint.close();
  }
}
