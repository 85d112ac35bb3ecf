import { Agent, request } from 'undici';
import { PEM_FILE_MAX_BYTES, readBoundedFile } from '../config/bounded-file.ts';
import { OriginRefusedError, safeUrl, TransportError, type TransportFailure } from './errors.ts';
import { describeError, flattenHeaders, isTimeout, readBoundedBytes } from './undici.ts';

export interface TlsOptions {
  /** Extra PEM CA bundle to trust. */
  readonly caFile?: string | undefined;
  /** Off by default; when on, certificates are not verified (the caller logs it loudly). */
  readonly insecureSkipVerify?: boolean | undefined;
}

export interface HttpClientOptions {
  /** Names the API in errors, e.g. `stackit audit log`. */
  readonly name: string;
  /** The only origin this client will talk to (credentials are attached to its requests). */
  readonly origin: string;
  /** Deadline for one request: connect, headers and the whole body. */
  readonly timeoutMs: number;
  /** Responses larger than this are refused, so one huge page cannot exhaust memory. */
  readonly maxBodyBytes?: number;
  readonly userAgent: string;
  readonly tls?: TlsOptions;
}

export interface HttpRequest {
  readonly method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly url: string | URL;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Buffer;
  readonly signal?: AbortSignal | undefined;
}

export interface HttpResponse {
  readonly status: number;
  /** Lower-case header names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  /** The body decoded as UTF-8 (invalid sequences become U+FFFD; `bytes` has what was sent). */
  readonly body: string;
  /** The body exactly as received. */
  readonly bytes: Buffer;
  readonly url: string;
}

const DEFAULT_MAX_BODY = 32 * 1024 * 1024;

/**
 * The one HTTP client providers use (undici underneath): a per-request deadline, bounded response
 * size, TLS verification on unless explicitly turned off, and an origin guard so a credential only ever
 * travels to the host it was configured for. It does not retry: callers know which statuses mean what.
 */
export class HttpClient {
  readonly origin: string;
  readonly #options: HttpClientOptions;
  readonly #agent: Agent;

  constructor(options: HttpClientOptions) {
    this.#options = options;
    this.origin = new URL(options.origin).origin;
    const ca = options.tls?.caFile
      ? readBoundedFile(options.tls.caFile, PEM_FILE_MAX_BYTES).toString('utf8')
      : undefined;
    this.#agent = new Agent({
      connect: {
        rejectUnauthorized: options.tls?.insecureSkipVerify !== true,
        ...(ca ? { ca } : {}),
        timeout: options.timeoutMs,
      },
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      keepAliveTimeout: 30_000,
    });
  }

  /** Throws OriginRefusedError unless `url` is on the configured origin. */
  assertOrigin(url: string | URL, what: string): URL {
    const parsed = new URL(url);
    if (parsed.origin !== this.origin) throw new OriginRefusedError(parsed.href, this.origin, what);
    return parsed;
  }

  async send(req: HttpRequest): Promise<HttpResponse> {
    const url = this.assertOrigin(req.url, this.#options.name);
    const deadline = AbortSignal.timeout(this.#options.timeoutMs);
    const signal = req.signal ? AbortSignal.any([req.signal, deadline]) : deadline;
    const where = `${this.#options.name} ${req.method ?? 'GET'} ${safeUrl(url)}`;
    try {
      const response = await request(url, {
        dispatcher: this.#agent,
        method: req.method ?? 'GET',
        headers: { 'user-agent': this.#options.userAgent, ...req.headers },
        ...(req.body !== undefined ? { body: req.body } : {}),
        // undici's request() never follows redirects, which is what we want: a 3xx to another host
        // must not carry our token. A 3xx reaches the caller as an unexpected status.
        signal,
      });
      const bytes = await readBoundedBytes(
        response.body,
        this.#options.maxBodyBytes ?? DEFAULT_MAX_BODY,
        (max) => new TransportError('too_large', `${where}: response larger than ${max} bytes, refused`),
      );
      return {
        status: response.statusCode,
        headers: flattenHeaders(response.headers),
        body: bytes.toString('utf8'),
        bytes,
        url: url.href,
      };
    } catch (error) {
      if (error instanceof TransportError) throw error;
      if (req.signal?.aborted) throw new TransportError('aborted', `${where}: aborted`, { cause: error });
      if (deadline.aborted) {
        throw new TransportError(
          'timeout',
          `${where}: no complete response within ${this.#options.timeoutMs} ms`,
          {
            cause: error,
          },
        );
      }
      const failure = classify(error);
      throw new TransportError(failure, `${where}: ${failure} (${describeError(error)})`, { cause: error });
    }
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}

/** A failure before our own deadline fired: undici's timeouts still count as a timeout. */
function classify(error: unknown): TransportFailure {
  return isTimeout(error) ? 'timeout' : 'network';
}
