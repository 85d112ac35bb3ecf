import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { OtlpDecodeError } from '../errors.ts';
import { decodeJsonRequest, encodeJsonResponse } from '../json.ts';
import { encodeStatus } from '../proto.ts';
import { decodeProtobufRequest, encodeProtobufResponse } from '../protobuf.ts';
import type { DecodedLogs } from '../validate.ts';
import { authorizer, type ReceiverAuth } from './auth.ts';
import { BodyError, readBody } from './body.ts';
import type { ExportAnswer, ExportHandler, ReceiverTransport, RequestObserver } from './handler.ts';
import { type ReceiverTlsFiles, readTlsFiles, watchTlsFiles } from './tls.ts';

export const OTLP_LOGS_PATH = '/v1/logs';

export interface HttpReceiverOptions {
  readonly host: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
  readonly tls?: (ReceiverTlsFiles & { readonly reloadIntervalMs: number }) | undefined;
  readonly auth: ReceiverAuth;
  readonly maxBodyBytes: number;
  readonly handler: ExportHandler;
  readonly observe?: RequestObserver | undefined;
  readonly log: Logger;
}

type Encoding = 'protobuf' | 'json';

/**
 * OTLP/HTTP for logs: `POST /v1/logs` with a protobuf or JSON ExportLogsServiceRequest, optionally gzip.
 * Answers in the request's encoding: the ExportLogsServiceResponse on success, a google.rpc.Status with a
 * message naming the problem otherwise, and Retry-After with 429/503 so the sender keeps the data.
 */
export class OtlpHttpReceiver {
  readonly #options: HttpReceiverOptions;
  readonly #authorized: (header: string | undefined) => boolean;
  #server: Server | undefined;
  #stopWatching: (() => void) | undefined;

  constructor(options: HttpReceiverOptions) {
    this.#options = options;
    this.#authorized = authorizer(options.auth);
  }

  async listen(): Promise<number> {
    const { tls } = this.#options;
    const handle = (req: IncomingMessage, res: ServerResponse): void => {
      this.#handle(req, res).catch((error: unknown) => {
        this.#options.log.error({ err: error }, 'OTLP receiver failed to answer a request');
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
    };
    if (tls) {
      const secure = await readTlsFiles(tls);
      const server = createHttpsServer(
        { ...secure, requestCert: tls.clientCaFile !== undefined, rejectUnauthorized: true },
        handle,
      );
      this.#stopWatching = watchTlsFiles(
        tls,
        tls.reloadIntervalMs,
        (options) => server.setSecureContext(options),
        this.#options.log,
      );
      this.#server = server;
    } else {
      this.#server = createHttpServer(handle);
    }
    // Slow or stalled clients must not hold sockets forever.
    this.#server.requestTimeout = 60_000;
    this.#server.headersTimeout = 30_000;
    const server = this.#server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#options.port, this.#options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.#stopWatching?.();
    const server = this.#server;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const observe = this.#options.observe ?? (() => undefined);
    const path = (req.url ?? '').split('?')[0];
    if (path !== OTLP_LOGS_PATH) {
      req.resume();
      res
        .writeHead(404, { 'content-type': 'text/plain' })
        .end(`not found; OTLP logs go to POST ${OTLP_LOGS_PATH}\n`);
      return;
    }
    if (req.method !== 'POST') {
      req.resume();
      res.writeHead(405, { allow: 'POST', 'content-type': 'text/plain' }).end('only POST\n');
      return;
    }
    const encoding = encodingOf(req.headers['content-type']);
    if (!this.#authorized(req.headers.authorization)) {
      req.resume();
      observe({ transport: 'http', outcome: 'unauthorized' });
      const challenge = this.#options.auth.kind === 'basic' ? 'Basic realm="otlp"' : 'Bearer';
      this.#status(res, encoding ?? 'json', 401, 16, 'missing or wrong credentials', {
        'www-authenticate': challenge,
      });
      return;
    }
    if (encoding === undefined) {
      req.resume();
      observe({ transport: 'http', outcome: 'unsupported' });
      this.#status(
        res,
        'json',
        415,
        3,
        `content-type "${req.headers['content-type'] ?? ''}" is not supported; use application/x-protobuf or application/json`,
      );
      return;
    }
    const transport: ReceiverTransport = encoding === 'protobuf' ? 'http-protobuf' : 'http-json';
    let decoded: DecodedLogs;
    try {
      const body = await readBody(req, this.#options.maxBodyBytes);
      decoded = encoding === 'protobuf' ? decodeProtobufRequest(body) : decodeJsonRequest(utf8(body));
    } catch (error) {
      if (error instanceof BodyError || error instanceof OtlpDecodeError) {
        const status = error instanceof BodyError ? error.status : 400;
        observe({
          transport,
          outcome: status === 415 ? 'unsupported' : /limit/.test(error.message) ? 'too_large' : 'malformed',
        });
        this.#options.log.warn({ transport, status, reason: error.message }, 'OTLP request refused');
        this.#status(res, encoding, status, 3, error.message, { connection: 'close' });
        return;
      }
      throw error;
    }
    const answer = await this.#options.handler(decoded, transport);
    observe({ transport, outcome: answer.kind });
    this.#answer(res, encoding, answer);
  }

  #answer(res: ServerResponse, encoding: Encoding, answer: ExportAnswer): void {
    switch (answer.kind) {
      case 'accepted': {
        const response =
          answer.rejected > 0
            ? {
                partialSuccess: { rejectedLogRecords: BigInt(answer.rejected), errorMessage: answer.message },
              }
            : {};
        const body =
          encoding === 'protobuf'
            ? Buffer.from(encodeProtobufResponse(response))
            : encodeJsonResponse(response);
        res.writeHead(200, { 'content-type': contentType(encoding) }).end(body);
        return;
      }
      case 'invalid':
        this.#status(res, encoding, 400, 3, answer.message);
        return;
      case 'busy':
        this.#status(res, encoding, 429, 8, answer.message, {
          'retry-after': String(answer.retryAfterSeconds),
        });
        return;
      case 'unavailable':
        this.#status(res, encoding, 503, 14, answer.message, {
          'retry-after': String(answer.retryAfterSeconds),
        });
        return;
    }
  }

  #status(
    res: ServerResponse,
    encoding: Encoding,
    httpStatus: number,
    code: number,
    message: string,
    headers: Record<string, string> = {},
  ): void {
    const body =
      encoding === 'protobuf' ? Buffer.from(encodeStatus(code, message)) : JSON.stringify({ code, message });
    res.writeHead(httpStatus, { 'content-type': contentType(encoding), ...headers }).end(body);
  }
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/** JSON text must be UTF-8; decoding leniently would replace bad bytes unseen and alter the record. */
function utf8(body: Buffer): string {
  try {
    return STRICT_UTF8.decode(body);
  } catch {
    throw new OtlpDecodeError('', 'JSON body is not valid UTF-8');
  }
}

function encodingOf(header: string | undefined): Encoding | undefined {
  const type = (header ?? '').split(';')[0]?.trim().toLowerCase();
  if (type === 'application/x-protobuf' || type === 'application/protobuf') return 'protobuf';
  if (type === 'application/json') return 'json';
  return undefined;
}

function contentType(encoding: Encoding): string {
  return encoding === 'protobuf' ? 'application/x-protobuf' : 'application/json';
}
