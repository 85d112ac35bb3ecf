/**
 * The logs subset of OTLP as plain, immutable values: what the protobuf and JSON codecs decode into and
 * encode from. 64-bit integers are `bigint` (nanosecond timestamps do not fit a double), ids and bytes are
 * `Uint8Array`. Field names follow the OTLP/JSON mapping (lowerCamelCase).
 */

export type AnyValue =
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'bool'; readonly value: boolean }
  | { readonly kind: 'int'; readonly value: bigint }
  | { readonly kind: 'double'; readonly value: number }
  | { readonly kind: 'array'; readonly values: readonly AnyValue[] }
  | { readonly kind: 'kvlist'; readonly values: readonly KeyValue[] }
  | { readonly kind: 'bytes'; readonly value: Uint8Array }
  /** No member of the oneof set: OTLP's "empty" value (a null). */
  | { readonly kind: 'empty' };

export interface KeyValue {
  readonly key: string;
  readonly value: AnyValue;
}

export interface Resource {
  readonly attributes: readonly KeyValue[];
  readonly droppedAttributesCount: number;
}

export interface InstrumentationScope {
  readonly name: string;
  readonly version: string;
  readonly attributes: readonly KeyValue[];
  readonly droppedAttributesCount: number;
}

export interface LogRecord {
  readonly timeUnixNano: bigint;
  readonly observedTimeUnixNano: bigint;
  readonly severityNumber: number;
  readonly severityText: string;
  readonly body: AnyValue | undefined;
  readonly attributes: readonly KeyValue[];
  readonly droppedAttributesCount: number;
  readonly flags: number;
  readonly traceId: Uint8Array;
  readonly spanId: Uint8Array;
  readonly eventName: string;
}

export interface ScopeLogs {
  readonly scope: InstrumentationScope | undefined;
  readonly logRecords: readonly LogRecord[];
  readonly schemaUrl: string;
}

export interface ResourceLogs {
  readonly resource: Resource | undefined;
  readonly scopeLogs: readonly ScopeLogs[];
  readonly schemaUrl: string;
}

/** ExportLogsServiceRequest (and LogsData, which has the same shape). */
export interface LogsRequest {
  readonly resourceLogs: readonly ResourceLogs[];
}

export interface PartialSuccess {
  readonly rejectedLogRecords: bigint;
  readonly errorMessage: string;
}

export interface LogsResponse {
  readonly partialSuccess?: PartialSuccess | undefined;
}

/** A log record with the resource and scope it was sent under. */
export interface LocatedRecord {
  readonly resource: Resource | undefined;
  readonly resourceSchemaUrl: string;
  readonly scope: InstrumentationScope | undefined;
  readonly scopeSchemaUrl: string;
  readonly record: LogRecord;
  /** Where it was in the request, e.g. `resourceLogs[0].scopeLogs[1].logRecords[7]`. */
  readonly path: string;
}

/** Every record of a request in request order, each with its context. */
export function* locatedRecords(request: LogsRequest): Generator<LocatedRecord> {
  for (const [r, resourceLogs] of request.resourceLogs.entries()) {
    for (const [s, scopeLogs] of resourceLogs.scopeLogs.entries()) {
      for (const [l, record] of scopeLogs.logRecords.entries()) {
        yield {
          resource: resourceLogs.resource,
          resourceSchemaUrl: resourceLogs.schemaUrl,
          scope: scopeLogs.scope,
          scopeSchemaUrl: scopeLogs.schemaUrl,
          record,
          path: `resourceLogs[${r}].scopeLogs[${s}].logRecords[${l}]`,
        };
      }
    }
  }
}

/** A request holding exactly one record under its own resource and scope. */
export function singleRecordRequest(located: Omit<LocatedRecord, 'path'>): LogsRequest {
  return {
    resourceLogs: [
      {
        resource: located.resource,
        schemaUrl: located.resourceSchemaUrl,
        scopeLogs: [
          { scope: located.scope, schemaUrl: located.scopeSchemaUrl, logRecords: [located.record] },
        ],
      },
    ],
  };
}

/** The attribute value of `key` (the last one wins if a sender repeated a key). */
export function attribute(attributes: readonly KeyValue[], key: string): AnyValue | undefined {
  for (let i = attributes.length - 1; i >= 0; i--) {
    const kv = attributes[i] as KeyValue;
    if (kv.key === key) return kv.value;
  }
  return undefined;
}

export function stringValue(value: string): AnyValue {
  return { kind: 'string', value };
}

export const EMPTY_RECORD: LogRecord = {
  timeUnixNano: 0n,
  observedTimeUnixNano: 0n,
  severityNumber: 0,
  severityText: '',
  body: undefined,
  attributes: [],
  droppedAttributesCount: 0,
  flags: 0,
  traceId: new Uint8Array(0),
  spanId: new Uint8Array(0),
  eventName: '',
};
