import { OtlpDecodeError } from './errors.ts';
import type {
  AnyValue,
  InstrumentationScope,
  KeyValue,
  LogRecord,
  LogsRequest,
  LogsResponse,
  Resource,
} from './model.ts';
import { ExportLogsServiceRequestType, ExportLogsServiceResponseType } from './proto.ts';
import { checkDepth, type DecodedLogs, readRequest } from './validate.ts';

/**
 * OTLP protobuf ↔ the model. protobufjs does the wire format (and refuses more than 100 nested messages);
 * this file converts its message objects, whose types the wire format already guarantees, checking only
 * what it cannot: the nesting of attribute values.
 */

// protobufjs message objects: fields present on the wire are own properties; 64-bit values are Longs.
type Msg = Record<string, unknown>;

/** Reads a binary ExportLogsServiceRequest. Throws OtlpDecodeError when the bytes are not one. */
export function decodeProtobufRequest(bytes: Uint8Array): DecodedLogs {
  let message: Msg;
  try {
    message = ExportLogsServiceRequestType.decode(bytes) as unknown as Msg;
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new OtlpDecodeError(
      '',
      why.includes('max depth')
        ? 'protobuf body nested deeper than 100 messages'
        : /utf-?8/i.test(why)
          ? 'a string field holds bytes that are not UTF-8 (protobuf strings must be); the request is refused whole'
          : `body is not a protobuf ExportLogsServiceRequest (${why})`,
    );
  }
  return readRequest<Msg, Msg, Msg>(message, {
    resourceLogs: (body) => list(body as Msg, 'resourceLogs'),
    resource: (value, path) => ({
      resource: has(value, 'resource') ? resource(value.resource as Msg, `${path}.resource`) : undefined,
      schemaUrl: str(value, 'schemaUrl'),
    }),
    scopeLogs: (value) => list(value, 'scopeLogs'),
    scope: (value, path) => ({
      scope: has(value, 'scope') ? scope(value.scope as Msg, `${path}.scope`) : undefined,
      schemaUrl: str(value, 'schemaUrl'),
    }),
    logRecords: (value) => list(value, 'logRecords'),
    logRecord: (value, path) => logRecord(value, path),
  });
}

export function encodeProtobufRequest(request: LogsRequest): Uint8Array {
  return ExportLogsServiceRequestType.encode(toWireRequest(request)).finish();
}

export function decodeProtobufResponse(bytes: Uint8Array): LogsResponse {
  let message: Msg;
  try {
    message = ExportLogsServiceResponseType.decode(bytes) as unknown as Msg;
  } catch (error) {
    throw new OtlpDecodeError('', `body is not a protobuf ExportLogsServiceResponse (${String(error)})`);
  }
  if (!has(message, 'partialSuccess')) return {};
  const partial = message.partialSuccess as Msg;
  return {
    partialSuccess: {
      rejectedLogRecords: big(partial, 'rejectedLogRecords'),
      errorMessage: str(partial, 'errorMessage'),
    },
  };
}

export function encodeProtobufResponse(response: LogsResponse): Uint8Array {
  const partial = response.partialSuccess;
  const wire: Msg = {};
  if (partial && (partial.rejectedLogRecords !== 0n || partial.errorMessage !== '')) {
    wire.partialSuccess = {
      ...(partial.rejectedLogRecords !== 0n
        ? { rejectedLogRecords: partial.rejectedLogRecords.toString() }
        : {}),
      ...(partial.errorMessage !== '' ? { errorMessage: partial.errorMessage } : {}),
    };
  }
  return ExportLogsServiceResponseType.encode(wire).finish();
}

function has(message: Msg, field: string): boolean {
  return Object.hasOwn(message, field) && message[field] !== null && message[field] !== undefined;
}

function list(message: Msg, field: string): Msg[] {
  return has(message, field) ? (message[field] as Msg[]) : [];
}

function str(message: Msg, field: string): string {
  return has(message, field) ? (message[field] as string) : '';
}

function num(message: Msg, field: string): number {
  return has(message, field) ? (message[field] as number) : 0;
}

function big(message: Msg, field: string): bigint {
  // A Long's toString() is exact (and unsigned for fixed64); without long.js it would be a number.
  return has(message, field) ? BigInt(String(message[field])) : 0n;
}

function bytes(message: Msg, field: string): Uint8Array {
  return has(message, field) ? new Uint8Array(message[field] as Uint8Array) : new Uint8Array(0);
}

function resource(message: Msg, path: string): Resource {
  return {
    attributes: keyValues(list(message, 'attributes'), `${path}.attributes`, 1),
    droppedAttributesCount: num(message, 'droppedAttributesCount'),
  };
}

function scope(message: Msg, path: string): InstrumentationScope {
  return {
    name: str(message, 'name'),
    version: str(message, 'version'),
    attributes: keyValues(list(message, 'attributes'), `${path}.attributes`, 1),
    droppedAttributesCount: num(message, 'droppedAttributesCount'),
  };
}

function logRecord(message: Msg, path: string): LogRecord {
  return {
    timeUnixNano: big(message, 'timeUnixNano'),
    observedTimeUnixNano: big(message, 'observedTimeUnixNano'),
    severityNumber: num(message, 'severityNumber'),
    severityText: str(message, 'severityText'),
    body: has(message, 'body') ? anyValue(message.body as Msg, `${path}.body`, 1) : undefined,
    attributes: keyValues(list(message, 'attributes'), `${path}.attributes`, 1),
    droppedAttributesCount: num(message, 'droppedAttributesCount'),
    flags: num(message, 'flags'),
    traceId: bytes(message, 'traceId'),
    spanId: bytes(message, 'spanId'),
    eventName: str(message, 'eventName'),
  };
}

function keyValues(messages: readonly Msg[], path: string, depth: number): KeyValue[] {
  return messages.map((kv, i) => ({
    key: str(kv, 'key'),
    value: has(kv, 'value')
      ? anyValue(kv.value as Msg, `${path}[${i}].value`, depth)
      : { kind: 'empty' as const },
  }));
}

function anyValue(message: Msg, path: string, depth: number): AnyValue {
  checkDepth(depth, path);
  // The oneof's virtual `value` names the member set last on the wire (proto3: the last one wins).
  switch (message.value) {
    case 'stringValue':
      return { kind: 'string', value: str(message, 'stringValue') };
    case 'boolValue':
      return { kind: 'bool', value: message.boolValue === true };
    case 'intValue':
      return { kind: 'int', value: big(message, 'intValue') };
    case 'doubleValue':
      return { kind: 'double', value: num(message, 'doubleValue') };
    case 'bytesValue':
      return { kind: 'bytes', value: bytes(message, 'bytesValue') };
    case 'arrayValue': {
      const values = list(message.arrayValue as Msg, 'values');
      return {
        kind: 'array',
        values: values.map((v, i) => anyValue(v, `${path}.arrayValue.values[${i}]`, depth + 1)),
      };
    }
    case 'kvlistValue':
      return {
        kind: 'kvlist',
        values: keyValues(
          list(message.kvlistValue as Msg, 'values'),
          `${path}.kvlistValue.values`,
          depth + 1,
        ),
      };
    default:
      return { kind: 'empty' };
  }
}

// --- encoding: the model as protobufjs plain objects (64-bit values as decimal strings) ---

function toWireRequest(request: LogsRequest): Msg {
  return {
    resourceLogs: request.resourceLogs.map((rl) =>
      omitDefaults({
        resource: rl.resource ? toWireResource(rl.resource) : undefined,
        scopeLogs: rl.scopeLogs.map((sl) =>
          omitDefaults({
            scope: sl.scope ? toWireScope(sl.scope) : undefined,
            logRecords: sl.logRecords.map(toWireRecord),
            schemaUrl: sl.schemaUrl,
          }),
        ),
        schemaUrl: rl.schemaUrl,
      }),
    ),
  };
}

function toWireResource(resource: Resource): Msg {
  return omitDefaults({
    attributes: resource.attributes.map(toWireKeyValue),
    droppedAttributesCount: resource.droppedAttributesCount,
  });
}

function toWireScope(scope: InstrumentationScope): Msg {
  return omitDefaults({
    name: scope.name,
    version: scope.version,
    attributes: scope.attributes.map(toWireKeyValue),
    droppedAttributesCount: scope.droppedAttributesCount,
  });
}

function toWireRecord(record: LogRecord): Msg {
  return omitDefaults({
    timeUnixNano: record.timeUnixNano,
    observedTimeUnixNano: record.observedTimeUnixNano,
    severityNumber: record.severityNumber,
    severityText: record.severityText,
    body: record.body ? toWireValue(record.body) : undefined,
    attributes: record.attributes.map(toWireKeyValue),
    droppedAttributesCount: record.droppedAttributesCount,
    flags: record.flags,
    traceId: record.traceId,
    spanId: record.spanId,
    eventName: record.eventName,
  });
}

function toWireKeyValue(kv: KeyValue): Msg {
  return omitDefaults({ key: kv.key, value: toWireValue(kv.value) });
}

function toWireValue(value: AnyValue): Msg {
  switch (value.kind) {
    case 'string':
      return { stringValue: value.value };
    case 'bool':
      return { boolValue: value.value };
    case 'int':
      return { intValue: value.value.toString() };
    case 'double':
      return { doubleValue: value.value };
    case 'bytes':
      return { bytesValue: value.value };
    case 'array':
      return { arrayValue: { values: value.values.map(toWireValue) } };
    case 'kvlist':
      return { kvlistValue: { values: value.values.map(toWireKeyValue) } };
    case 'empty':
      return {};
  }
}

/** proto3 leaves default values off the wire; so do we, which keeps the encoding canonical. */
function omitDefaults(fields: Record<string, unknown>): Msg {
  const out: Msg = {};
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || value === '' || value === 0 || value === 0n) continue;
    if ((Array.isArray(value) || value instanceof Uint8Array) && value.length === 0) continue;
    out[key] = typeof value === 'bigint' ? value.toString() : value;
  }
  return out;
}
