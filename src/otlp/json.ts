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
import { checkDepth, type DecodedLogs, readRequest } from './validate.ts';

/**
 * OTLP/JSON ↔ the model, per the OTLP specification's JSON mapping: lowerCamelCase keys, trace and span
 * ids as hex (not base64), 64-bit integers as decimal strings (numbers accepted when reading), enums as
 * integers, bytes as base64, unknown keys ignored. Every value's type is checked; a wrong one is an
 * error naming its path.
 */

type Obj = Record<string, unknown>;

/** Reads an OTLP/JSON ExportLogsServiceRequest. Throws OtlpDecodeError when the text is not one. */
export function decodeJsonRequest(text: string): DecodedLogs {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new OtlpDecodeError(
      '',
      `body is not JSON (${error instanceof Error ? error.message : String(error)})`,
    );
  }
  if (!isObject(body)) throw new OtlpDecodeError('', 'body is not a JSON object');
  return readRequest<unknown, unknown, unknown>(body, {
    resourceLogs: (b) => array(b as Obj, 'resourceLogs', ''),
    resource: (value, path) => {
      const rl = object(value, path);
      return {
        resource:
          rl.resource == null
            ? undefined
            : resource(object(rl.resource, `${path}.resource`), `${path}.resource`),
        schemaUrl: string(rl, 'schemaUrl', path),
      };
    },
    scopeLogs: (value, path) => array(object(value, path), 'scopeLogs', path),
    scope: (value, path) => {
      const sl = object(value, path);
      return {
        scope: sl.scope == null ? undefined : scope(object(sl.scope, `${path}.scope`), `${path}.scope`),
        schemaUrl: string(sl, 'schemaUrl', path),
      };
    },
    logRecords: (value, path) => array(object(value, path), 'logRecords', path),
    logRecord: (value, path) => logRecord(object(value, path), path),
  });
}

export function decodeJsonResponse(text: string): LogsResponse {
  let body: unknown;
  try {
    body = JSON.parse(text === '' ? '{}' : text);
  } catch {
    throw new OtlpDecodeError('', 'response body is not JSON');
  }
  if (!isObject(body)) throw new OtlpDecodeError('', 'response body is not a JSON object');
  if (body.partialSuccess == null) return {};
  const partial = object(body.partialSuccess, 'partialSuccess');
  return {
    partialSuccess: {
      rejectedLogRecords: int64(partial, 'rejectedLogRecords', 'partialSuccess', true),
      errorMessage: string(partial, 'errorMessage', 'partialSuccess'),
    },
  };
}

export function encodeJsonRequest(request: LogsRequest): string {
  return JSON.stringify({
    resourceLogs: request.resourceLogs.map((rl) =>
      compact({
        resource: rl.resource ? jsonResource(rl.resource) : undefined,
        scopeLogs: rl.scopeLogs.map((sl) =>
          compact({
            scope: sl.scope ? jsonScope(sl.scope) : undefined,
            logRecords: sl.logRecords.map(jsonRecord),
            schemaUrl: sl.schemaUrl,
          }),
        ),
        schemaUrl: rl.schemaUrl,
      }),
    ),
  });
}

export function encodeJsonResponse(response: LogsResponse): string {
  const partial = response.partialSuccess;
  if (!partial || (partial.rejectedLogRecords === 0n && partial.errorMessage === '')) return '{}';
  return JSON.stringify({
    partialSuccess: compact({
      rejectedLogRecords:
        partial.rejectedLogRecords === 0n ? undefined : partial.rejectedLogRecords.toString(),
      errorMessage: partial.errorMessage,
    }),
  });
}

/** The canonical OTLP/JSON of one record: defaults left out, keys in the specification's order. */
export function jsonRecord(record: LogRecord): Obj {
  return compact({
    timeUnixNano: record.timeUnixNano === 0n ? undefined : record.timeUnixNano.toString(),
    observedTimeUnixNano:
      record.observedTimeUnixNano === 0n ? undefined : record.observedTimeUnixNano.toString(),
    severityNumber: record.severityNumber,
    severityText: record.severityText,
    body: record.body ? jsonValue(record.body) : undefined,
    attributes: record.attributes.map(jsonKeyValue),
    droppedAttributesCount: record.droppedAttributesCount,
    flags: record.flags,
    traceId: hex(record.traceId),
    spanId: hex(record.spanId),
    eventName: record.eventName,
  });
}

function jsonResource(value: Resource): Obj {
  return compact({
    attributes: value.attributes.map(jsonKeyValue),
    droppedAttributesCount: value.droppedAttributesCount,
  });
}

function jsonScope(value: InstrumentationScope): Obj {
  return compact({
    name: value.name,
    version: value.version,
    attributes: value.attributes.map(jsonKeyValue),
    droppedAttributesCount: value.droppedAttributesCount,
  });
}

function jsonKeyValue(kv: KeyValue): Obj {
  return { key: kv.key, value: jsonValue(kv.value) };
}

function jsonValue(value: AnyValue): Obj {
  switch (value.kind) {
    case 'string':
      return { stringValue: value.value };
    case 'bool':
      return { boolValue: value.value };
    case 'int':
      return { intValue: value.value.toString() };
    case 'double':
      return { doubleValue: Number.isFinite(value.value) ? value.value : String(value.value) };
    case 'bytes':
      return { bytesValue: Buffer.from(value.value).toString('base64') };
    case 'array':
      return { arrayValue: { values: value.values.map(jsonValue) } };
    case 'kvlist':
      return { kvlistValue: { values: value.values.map(jsonKeyValue) } };
    case 'empty':
      return {};
  }
}

function compact(fields: Obj): Obj {
  const out: Obj = {};
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || value === '' || value === 0) continue;
    if (Array.isArray(value) && value.length === 0) continue;
    out[key] = value;
  }
  return out;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

// --- reading, with a type check per field ---

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function object(value: unknown, path: string): Obj {
  if (!isObject(value)) throw new OtlpDecodeError(path, `expected an object, got ${describe(value)}`);
  return value;
}

function array(parent: Obj, key: string, path: string): unknown[] {
  const value = parent[key];
  if (value == null) return [];
  if (!Array.isArray(value))
    throw new OtlpDecodeError(at(path, key), `expected an array, got ${describe(value)}`);
  return value;
}

function string(parent: Obj, key: string, path: string): string {
  const value = parent[key];
  if (value == null) return '';
  if (typeof value !== 'string')
    throw new OtlpDecodeError(at(path, key), `expected a string, got ${describe(value)}`);
  return value;
}

/** uint32 / int32 / fixed32 and enums: a JSON number, or a decimal string as proto3 JSON allows. */
function int32(parent: Obj, key: string, path: string, min: number, max: number): number {
  const value = parent[key];
  if (value == null) return 0;
  const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new OtlpDecodeError(
      at(path, key),
      `expected an integer in [${min}, ${max}], got ${describe(value)}`,
    );
  }
  return n;
}

/** int64 / fixed64: a decimal string (the OTLP/JSON form) or a safe integer number. */
function int64(parent: Obj, key: string, path: string, signed: boolean): bigint {
  const value = parent[key];
  if (value == null) return 0n;
  let n: bigint | undefined;
  if (typeof value === 'string' && /^-?\d{1,20}$/.test(value)) n = BigInt(value);
  else if (typeof value === 'number' && Number.isSafeInteger(value)) n = BigInt(value);
  const [min, max] = signed ? [-(2n ** 63n), 2n ** 63n - 1n] : [0n, 2n ** 64n - 1n];
  if (n === undefined || n < min || n > max) {
    throw new OtlpDecodeError(
      at(path, key),
      `expected a ${signed ? '' : 'non-negative '}64-bit integer as a decimal string, got ${describe(value)}`,
    );
  }
  return n;
}

function hexId(parent: Obj, key: string, path: string, length: number): Uint8Array {
  const value = parent[key];
  if (value == null || value === '') return new Uint8Array(0);
  if (typeof value !== 'string' || value.length !== length * 2 || !/^[0-9a-fA-F]*$/.test(value)) {
    throw new OtlpDecodeError(at(path, key), `expected ${length * 2} hex digits, got ${describe(value)}`);
  }
  return new Uint8Array(Buffer.from(value, 'hex'));
}

function resource(value: Obj, path: string): Resource {
  return {
    attributes: keyValues(array(value, 'attributes', path), at(path, 'attributes'), 1),
    droppedAttributesCount: int32(value, 'droppedAttributesCount', path, 0, 0xffffffff),
  };
}

function scope(value: Obj, path: string): InstrumentationScope {
  return {
    name: string(value, 'name', path),
    version: string(value, 'version', path),
    attributes: keyValues(array(value, 'attributes', path), at(path, 'attributes'), 1),
    droppedAttributesCount: int32(value, 'droppedAttributesCount', path, 0, 0xffffffff),
  };
}

function logRecord(value: Obj, path: string): LogRecord {
  return {
    timeUnixNano: int64(value, 'timeUnixNano', path, false),
    observedTimeUnixNano: int64(value, 'observedTimeUnixNano', path, false),
    severityNumber: int32(value, 'severityNumber', path, -0x80000000, 0x7fffffff),
    severityText: string(value, 'severityText', path),
    body: value.body == null ? undefined : anyValue(value.body, at(path, 'body'), 1),
    attributes: keyValues(array(value, 'attributes', path), at(path, 'attributes'), 1),
    droppedAttributesCount: int32(value, 'droppedAttributesCount', path, 0, 0xffffffff),
    flags: int32(value, 'flags', path, 0, 0xffffffff),
    traceId: hexId(value, 'traceId', path, 16),
    spanId: hexId(value, 'spanId', path, 8),
    eventName: string(value, 'eventName', path),
  };
}

function keyValues(values: readonly unknown[], path: string, depth: number): KeyValue[] {
  return values.map((raw, i) => {
    const kvPath = `${path}[${i}]`;
    const kv = object(raw, kvPath);
    return {
      key: string(kv, 'key', kvPath),
      value: kv.value == null ? { kind: 'empty' as const } : anyValue(kv.value, at(kvPath, 'value'), depth),
    };
  });
}

const VALUE_KEYS = [
  'stringValue',
  'boolValue',
  'intValue',
  'doubleValue',
  'arrayValue',
  'kvlistValue',
  'bytesValue',
] as const;

function anyValue(raw: unknown, path: string, depth: number): AnyValue {
  checkDepth(depth, path);
  const value = object(raw, path);
  const set = VALUE_KEYS.filter((key) => value[key] != null);
  if (set.length > 1) throw new OtlpDecodeError(path, `sets more than one value (${set.join(', ')})`);
  const key = set[0];
  const field = at(path, key ?? '');
  switch (key) {
    case 'stringValue':
      return { kind: 'string', value: string(value, key, path) };
    case 'boolValue':
      if (typeof value.boolValue !== 'boolean') throw wrongType(field, 'a boolean', value.boolValue);
      return { kind: 'bool', value: value.boolValue };
    case 'intValue':
      return { kind: 'int', value: int64(value, key, path, true) };
    case 'doubleValue':
      return { kind: 'double', value: double(value.doubleValue, field) };
    case 'bytesValue': {
      const text = value.bytesValue;
      if (typeof text !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(text)) {
        throw wrongType(field, 'base64 text', text);
      }
      return { kind: 'bytes', value: new Uint8Array(Buffer.from(text, 'base64')) };
    }
    case 'arrayValue': {
      const values = array(object(value.arrayValue, field), 'values', field);
      return {
        kind: 'array',
        values: values.map((v, i) => anyValue(v, `${field}.values[${i}]`, depth + 1)),
      };
    }
    case 'kvlistValue': {
      const values = array(object(value.kvlistValue, field), 'values', field);
      return { kind: 'kvlist', values: keyValues(values, `${field}.values`, depth + 1) };
    }
    default:
      return { kind: 'empty' };
  }
}

function double(value: unknown, path: string): number {
  if (typeof value === 'number') return value;
  if (value === 'NaN' || value === 'Infinity' || value === '-Infinity') return Number(value);
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value)))
    return Number(value);
  throw wrongType(path, 'a number', value);
}

function wrongType(path: string, expected: string, got: unknown): OtlpDecodeError {
  return new OtlpDecodeError(path, `expected ${expected}, got ${describe(got)}`);
}

function at(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

/**
 * The type of a value, never a string's content: records carry request bodies, which may hold secrets,
 * and this text reaches logs and the sender.
 */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return `a string of ${value.length} characters`;
  return `${typeof value} ${String(value)}`;
}
