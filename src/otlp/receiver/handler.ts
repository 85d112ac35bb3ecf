import type { DecodedLogs } from '../validate.ts';

/**
 * What the owner of a receiver (the pipeline) answers for one decoded request. The transports turn it
 * into HTTP statuses or gRPC codes; they never decide it.
 */
export type ExportAnswer =
  /** Committed durably. `rejected` records were committed with anomalies (OTLP partial success). */
  | { readonly kind: 'accepted'; readonly rejected: number; readonly message: string }
  /**
   * Part of the request was malformed OTLP; everything readable beside it was committed durably. The
   * sender must not retry the same bytes (400 / INVALID_ARGUMENT).
   */
  | { readonly kind: 'invalid'; readonly message: string }
  /** Nothing committed; retry later: an outbox is full (429 / RESOURCE_EXHAUSTED). */
  | { readonly kind: 'busy'; readonly message: string; readonly retryAfterSeconds: number }
  /** Nothing known to be committed; retry later: Redis is unreachable (503 / UNAVAILABLE). */
  | { readonly kind: 'unavailable'; readonly message: string; readonly retryAfterSeconds: number };

export type ExportHandler = (request: DecodedLogs, transport: ReceiverTransport) => Promise<ExportAnswer>;

export type ReceiverTransport = 'http-protobuf' | 'http-json' | 'grpc';

/** Told about every request, for metrics: how it ended, and why when it was refused before the handler. */
export type RequestObserver = (sample: {
  readonly transport: ReceiverTransport | 'http';
  readonly outcome: ExportAnswer['kind'] | 'unauthorized' | 'malformed' | 'too_large' | 'unsupported';
}) => void;
