import { Agent, request } from 'undici';
import { PEM_FILE_MAX_BYTES, readBoundedFile } from '../../config/bounded-file.ts';
import { safeUrl } from '../../http/errors.ts';
import { describeError, flattenHeaders, isTimeout, readBoundedBytes } from '../../http/undici.ts';
import type { SinkRequestSample } from '../sink.ts';
import { authorizationHeader, type HttpAuth, type TlsSettings } from './config.ts';

export interface SinkHttpOptions {
  /** The sink's name, for messages. */
  readonly sink: string;
  /** Base URL; request paths are resolved against it, so credentials only ever go to this origin. */
  readonly baseUrl: string;
  readonly timeoutMs: number;
  readonly tls: TlsSettings;
  readonly auth: HttpAuth;
  /** Sent with every request (tenant headers). */
  readonly headers?: Readonly<Record<string, string>>;
  readonly userAgent: string;
  readonly onRequest?: ((sample: SinkRequestSample) => void) | undefined;
  /** Larger responses are refused (a sink's answers are small; a huge one is a misconfiguration). */
  readonly maxResponseBytes?: number;
}

export interface SinkHttpRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'HEAD' | 'DELETE';
  /** Path (and query) relative to the base URL. */
  readonly path: string;
  readonly operation: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Buffer;
  readonly signal?: AbortSignal | undefined;
}

export interface SinkHttpResponse {
  readonly status: number;
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** The same body as bytes, for binary (protobuf) answers. */
  readonly bytes: Buffer;
}

/** No response at all: timeout, refused connection, TLS failure. The batch is retried. */
export class SinkTransportError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SinkTransportError';
  }
}

/**
 * The HTTP side of a sink: one keep-alive pool to one origin, TLS verified unless turned off (with
 * optional client certificates for mutual TLS), a deadline per request, bounded responses, the
 * Authorization header added here and nowhere else, and a metrics sample per request. Request bodies
 * are Buffers, so they go with Content-Length rather than chunked (OpenSearch advises against chunked
 * bulk bodies). It does not retry: the delivery worker does, with backoff and without giving up.
 */
export class SinkHttp {
  readonly base: URL;
  readonly #o: SinkHttpOptions;
  readonly #agent: Agent;
  readonly #authorization: string | undefined;

  constructor(options: SinkHttpOptions) {
    this.#o = options;
    this.base = new URL(options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`);
    const { tls } = options;
    const read = (path: string | undefined, what: string): string | undefined => {
      if (path === undefined) return undefined;
      try {
        return readBoundedFile(path, PEM_FILE_MAX_BYTES).toString('utf8');
      } catch (error) {
        throw new Error(`sink "${options.sink}": tls.${what}: ${(error as Error).message}`);
      }
    };
    const ca = read(tls.caFile, 'caFile');
    const cert = read(tls.certFile, 'certFile');
    const key = read(tls.keyFile, 'keyFile');
    this.#agent = new Agent({
      connect: {
        rejectUnauthorized: !tls.insecureSkipVerify,
        ...(ca ? { ca } : {}),
        ...(cert ? { cert } : {}),
        ...(key ? { key } : {}),
        ...(tls.serverName ? { servername: tls.serverName } : {}),
        timeout: options.timeoutMs,
      },
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      keepAliveTimeout: 30_000,
    });
    this.#authorization = authorizationHeader(options.auth);
  }

  url(path: string): URL {
    const url = new URL(path.replace(/^\//, ''), this.base);
    if (url.origin !== this.base.origin)
      throw new Error(`sink "${this.#o.sink}": ${path} leaves ${this.base.origin}`);
    return url;
  }

  async send(req: SinkHttpRequest): Promise<SinkHttpResponse> {
    const url = this.url(req.path);
    const deadline = AbortSignal.timeout(this.#o.timeoutMs);
    const signal = req.signal ? AbortSignal.any([req.signal, deadline]) : deadline;
    const where = `sink "${this.#o.sink}": ${req.method} ${safeUrl(url)}`;
    const started = performance.now();
    let status = 'error';
    try {
      const response = await request(url, {
        dispatcher: this.#agent,
        method: req.method,
        headers: {
          'user-agent': this.#o.userAgent,
          ...this.#o.headers,
          ...req.headers,
          ...(this.#authorization ? { authorization: this.#authorization } : {}),
        },
        ...(req.body !== undefined ? { body: req.body } : {}),
        signal,
      });
      status = String(response.statusCode);
      const bytes = await readBoundedBytes(
        response.body,
        this.#o.maxResponseBytes ?? 16 * 1024 * 1024,
        (max) => new SinkTransportError(`${where}: response larger than ${max} bytes`),
      );
      const body = bytes.toString('utf8');
      return { status: response.statusCode, headers: flattenHeaders(response.headers), body, bytes };
    } catch (error) {
      if (error instanceof SinkTransportError) throw error;
      if (req.signal?.aborted) throw new SinkTransportError(`${where}: aborted`, { cause: error });
      if (deadline.aborted || isTimeout(error)) {
        throw new SinkTransportError(`${where}: no complete response within ${this.#o.timeoutMs} ms`, {
          cause: error,
        });
      }
      throw new SinkTransportError(`${where}: ${describeError(error)}`, { cause: error });
    } finally {
      this.#o.onRequest?.({
        operation: req.operation,
        status,
        seconds: (performance.now() - started) / 1000,
      });
    }
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}

/** Shortens a store's error body for a reason or a log line: one line, bounded. */
export function excerpt(body: string, max = 300): string {
  const flat = body.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}
