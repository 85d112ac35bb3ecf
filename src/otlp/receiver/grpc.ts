import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { OtlpDecodeError } from '../errors.ts';
import { encodeStatus, GRPC_EXPORT_PATH, GrpcCode } from '../proto.ts';
import { decodeProtobufRequest, encodeProtobufResponse } from '../protobuf.ts';
import { authorizer, type ReceiverAuth } from './auth.ts';
import type { ExportHandler, RequestObserver } from './handler.ts';
import type { ReceiverTlsFiles } from './tls.ts';

export interface GrpcReceiverOptions {
  readonly host: string;
  readonly port: number;
  readonly tls?: (ReceiverTlsFiles & { readonly reloadIntervalMs: number }) | undefined;
  readonly auth: ReceiverAuth;
  readonly maxBodyBytes: number;
  readonly handler: ExportHandler;
  readonly observe?: RequestObserver | undefined;
  readonly log: Logger;
}

/** Messages stay bytes through grpc-js, so decoding errors are ours to answer with a clear status. */
const identity = (bytes: Buffer): Buffer => bytes;

const LOGS_SERVICE: grpc.ServiceDefinition = {
  Export: {
    path: GRPC_EXPORT_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

/**
 * OTLP/gRPC for logs: `opentelemetry.proto.collector.logs.v1.LogsService/Export`. grpc-js decompresses gzip
 * and enforces the message size (after decompression); TLS files are re-read when they change.
 */
export class OtlpGrpcReceiver {
  readonly #options: GrpcReceiverOptions;
  readonly #authorized: (header: string | undefined) => boolean;
  readonly #server: grpc.Server;
  #provider: grpc.experimental.FileWatcherCertificateProvider | undefined;

  constructor(options: GrpcReceiverOptions) {
    this.#options = options;
    this.#authorized = authorizer(options.auth);
    this.#server = new grpc.Server({
      'grpc.max_receive_message_length': options.maxBodyBytes,
      'grpc.max_send_message_length': 4 * 1024 * 1024,
    });
    this.#server.addService(LOGS_SERVICE, { Export: this.#export.bind(this) });
  }

  async listen(): Promise<number> {
    const { tls } = this.#options;
    let credentials = grpc.ServerCredentials.createInsecure();
    if (tls) {
      this.#provider = new grpc.experimental.FileWatcherCertificateProvider({
        certificateFile: tls.certFile,
        privateKeyFile: tls.keyFile,
        ...(tls.clientCaFile ? { caCertificateFile: tls.clientCaFile } : {}),
        refreshIntervalMs: tls.reloadIntervalMs,
      });
      credentials = grpc.experimental.createCertificateProviderServerCredentials(
        this.#provider,
        tls.clientCaFile ? this.#provider : null,
        tls.clientCaFile !== undefined,
      );
    }
    const host = this.#options.host.includes(':') ? `[${this.#options.host}]` : this.#options.host;
    return await new Promise<number>((resolve, reject) => {
      this.#server.bindAsync(`${host}:${this.#options.port}`, credentials, (error, port) =>
        error ? reject(error) : resolve(port),
      );
    });
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#server.forceShutdown();
        resolve();
      }, 5_000);
      timer.unref();
      this.#server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #export(call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>): void {
    const observe = this.#options.observe ?? (() => undefined);
    const header = call.metadata.get('authorization')[0];
    if (!this.#authorized(typeof header === 'string' ? header : header?.toString('utf8'))) {
      observe({ transport: 'grpc', outcome: 'unauthorized' });
      callback({ code: GrpcCode.UNAUTHENTICATED, details: 'missing or wrong credentials' });
      return;
    }
    let decoded: ReturnType<typeof decodeProtobufRequest>;
    try {
      decoded = decodeProtobufRequest(call.request);
    } catch (error) {
      if (!(error instanceof OtlpDecodeError)) throw error;
      observe({ transport: 'grpc', outcome: 'malformed' });
      this.#options.log.warn({ transport: 'grpc', reason: error.message }, 'OTLP request refused');
      callback({ code: GrpcCode.INVALID_ARGUMENT, details: error.message });
      return;
    }
    this.#options.handler(decoded, 'grpc').then(
      (answer) => {
        observe({ transport: 'grpc', outcome: answer.kind });
        switch (answer.kind) {
          case 'accepted': {
            const response =
              answer.rejected > 0
                ? {
                    partialSuccess: {
                      rejectedLogRecords: BigInt(answer.rejected),
                      errorMessage: answer.message,
                    },
                  }
                : {};
            callback(null, Buffer.from(encodeProtobufResponse(response)));
            return;
          }
          case 'invalid':
            callback({ code: GrpcCode.INVALID_ARGUMENT, details: answer.message });
            return;
          case 'busy':
          case 'unavailable': {
            const code = answer.kind === 'busy' ? GrpcCode.RESOURCE_EXHAUSTED : GrpcCode.UNAVAILABLE;
            const metadata = new grpc.Metadata();
            metadata.set(
              'grpc-status-details-bin',
              Buffer.from(encodeStatus(code, answer.message, answer.retryAfterSeconds)),
            );
            callback({ code, details: answer.message, metadata });
            return;
          }
        }
      },
      (error: unknown) => {
        this.#options.log.error({ err: error }, 'OTLP gRPC export failed');
        callback({ code: GrpcCode.UNAVAILABLE, details: 'internal error; retry' });
      },
    );
  }
}
