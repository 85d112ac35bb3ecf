import { describe, expect, it } from 'vitest';
import { OtlpDecodeError } from '../../src/otlp/errors.ts';
import {
  decodeJsonRequest,
  decodeJsonResponse,
  encodeJsonRequest,
  encodeJsonResponse,
} from '../../src/otlp/json.ts';
import { type AnyValue, type LogRecord, type LogsRequest, locatedRecords } from '../../src/otlp/model.ts';
import { ExportLogsServiceRequestType } from '../../src/otlp/proto.ts';
import {
  decodeProtobufRequest,
  decodeProtobufResponse,
  encodeProtobufRequest,
  encodeProtobufResponse,
} from '../../src/otlp/protobuf.ts';

const str = (value: string): AnyValue => ({ kind: 'string', value });

function record(overrides: Partial<LogRecord> = {}): LogRecord {
  return {
    timeUnixNano: 1_764_662_400_123_456_789n,
    observedTimeUnixNano: 0n,
    severityNumber: 9,
    severityText: 'INFO',
    body: str('secret deleted'),
    attributes: [
      { key: 'stackit.log.id', value: str('0f1e2d3c-aaaa-bbbb-cccc-000000000001') },
      { key: 'count', value: { kind: 'int', value: -9_007_199_254_740_993n } },
      { key: 'ratio', value: { kind: 'double', value: 0.25 } },
      { key: 'ok', value: { kind: 'bool', value: false } },
      { key: 'blob', value: { kind: 'bytes', value: new Uint8Array([0, 255, 7]) } },
      { key: 'none', value: { kind: 'empty' } },
      {
        key: 'nested',
        value: {
          kind: 'kvlist',
          values: [{ key: 'list', value: { kind: 'array', values: [str('a'), { kind: 'int', value: 0n }] } }],
        },
      },
    ],
    droppedAttributesCount: 2,
    flags: 1,
    traceId: new Uint8Array(16).fill(0xab),
    spanId: new Uint8Array(8).fill(0x01),
    eventName: 'audit',
    ...overrides,
  };
}

function request(...records: LogRecord[]): LogsRequest {
  return {
    resourceLogs: [
      {
        resource: { attributes: [{ key: 'service.name', value: str('stackit') }], droppedAttributesCount: 0 },
        schemaUrl: 'https://opentelemetry.io/schemas/1.26.0',
        scopeLogs: [
          {
            scope: {
              name: 'stackit-audit-provider',
              version: '1',
              attributes: [],
              droppedAttributesCount: 0,
            },
            schemaUrl: '',
            logRecords: records,
          },
        ],
      },
    ],
  };
}

/** An attribute value nested `depth` levels deep (1 = a plain string). */
function nested(depth: number): unknown {
  let value: unknown = { stringValue: 'leaf' };
  for (let i = 1; i < depth; i++) value = { arrayValue: { values: [value] } };
  return value;
}

function jsonRecord(attributes: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { timeUnixNano: '1764662400000000001', attributes, ...extra };
}

function jsonBody(...logRecords: unknown[]): string {
  return JSON.stringify({ resourceLogs: [{ scopeLogs: [{ scope: { name: 's' }, logRecords }] }] });
}

describe('OTLP protobuf codec', () => {
  it('round-trips every value type, 64-bit integers exactly', () => {
    const original = request(record(), record({ body: undefined, attributes: [] }));
    const decoded = decodeProtobufRequest(encodeProtobufRequest(original));
    expect(decoded.problems).toEqual([]);
    expect(decoded.request).toEqual(original);
  });

  it('reads what the protobuf runtime wrote from the OTLP field numbers (time is fixed64 field 1)', () => {
    const bytes = encodeProtobufRequest(request(record({ attributes: [], body: undefined })));
    // resourceLogs(1) → scopeLogs(2) → logRecords(2) → timeUnixNano: tag 0x09 (field 1, fixed64)
    expect(Buffer.from(bytes).includes(Buffer.from([0x09]))).toBe(true);
    const generic = ExportLogsServiceRequestType.toObject(ExportLogsServiceRequestType.decode(bytes), {
      longs: String,
    }) as { resourceLogs: Array<{ scopeLogs: Array<{ logRecords: Array<{ timeUnixNano: string }> }> }> };
    expect(generic.resourceLogs[0]?.scopeLogs[0]?.logRecords[0]?.timeUnixNano).toBe('1764662400123456789');
  });

  it('refuses bytes that are not a request, naming why', () => {
    expect(() => decodeProtobufRequest(Buffer.from('{"resourceLogs":[]}'))).toThrow(OtlpDecodeError);
    expect(() => decodeProtobufRequest(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f]))).toThrow(
      /not a protobuf ExportLogsServiceRequest/,
    );
  });

  it('refuses nesting beyond the protobuf limit as a whole, and one record nested too deep alone', () => {
    const deepJson = jsonBody(jsonRecord([{ key: 'deep', value: nested(40) }]));
    // Build the deep record through JSON with a raised limit is impossible, so encode a wire message by hand.
    const deepValue = (depth: number): Record<string, unknown> =>
      depth === 1 ? { stringValue: 'leaf' } : { arrayValue: { values: [deepValue(depth - 1)] } };
    const wire = (depth: number) =>
      ExportLogsServiceRequestType.encode({
        resourceLogs: [
          {
            scopeLogs: [
              {
                logRecords: [
                  { attributes: [{ key: 'deep', value: deepValue(depth) }] },
                  { attributes: [{ key: 'ok', value: { stringValue: 'fine' } }] },
                ],
              },
            ],
          },
        ],
      }).finish();
    const partial = decodeProtobufRequest(wire(40));
    expect(partial.problems).toHaveLength(1);
    expect(partial.problems[0]?.path).toMatch(
      /^resourceLogs\[0]\.scopeLogs\[0]\.logRecords\[0]\.attributes\[0]/,
    );
    expect(partial.problems[0]?.message).toMatch(/nested deeper than 32 levels/);
    expect(partial.records.map((r) => r.path)).toEqual(['resourceLogs[0].scopeLogs[0].logRecords[1]']);
    // The protobuf runtime refuses to even encode that deep, so the wire bytes are built by hand.
    const field = (tag: number, body: Buffer): Buffer => {
      const length: number[] = [];
      for (let n = body.length; ; n >>>= 7) {
        if (n < 0x80) {
          length.push(n);
          break;
        }
        length.push((n & 0x7f) | 0x80);
      }
      return Buffer.concat([Buffer.from([tag, ...length]), body]);
    };
    let value = field(0x0a, Buffer.from('leaf')); // AnyValue.string_value
    for (let i = 0; i < 200; i++) value = field(0x2a, field(0x0a, value)); // array_value.values
    const tooDeep = field(0x0a, field(0x12, field(0x12, field(0x32, field(0x12, value)))));
    expect(() => decodeProtobufRequest(tooDeep)).toThrow(/nested deeper than 100 messages/);
    expect(decodeJsonRequest(deepJson).problems[0]?.message).toMatch(/nested deeper than 32 levels/);
  });

  it('refuses invalid UTF-8 in a string field instead of replacing it unseen', () => {
    const field = (tag: number, body: Buffer): Buffer =>
      Buffer.concat([Buffer.from([tag, body.length]), body]);
    const severityText = Buffer.from([0x1a, 0x02, 0xff, 0xfe]); // LogRecord.severity_text = ff fe
    const bytes = field(0x0a, field(0x12, field(0x12, severityText)));
    expect(() => decodeProtobufRequest(bytes)).toThrow(/string field holds bytes that are not UTF-8/);
  });

  it('encodes partial success and reads it back', () => {
    const response = { partialSuccess: { rejectedLogRecords: 3n, errorMessage: 'three were odd' } };
    expect(decodeProtobufResponse(encodeProtobufResponse(response))).toEqual(response);
    expect(encodeProtobufResponse({}).length).toBe(0);
  });
});

describe('OTLP/JSON codec', () => {
  it('follows the JSON mapping: hex ids, 64-bit integers as strings, enums as numbers', () => {
    const text = encodeJsonRequest(request(record()));
    const logRecord = JSON.parse(text).resourceLogs[0].scopeLogs[0].logRecords[0];
    expect(logRecord.timeUnixNano).toBe('1764662400123456789');
    expect(logRecord.traceId).toBe('ab'.repeat(16));
    expect(logRecord.spanId).toBe('0101010101010101');
    expect(logRecord.severityNumber).toBe(9);
    expect(logRecord.attributes[1]).toEqual({ key: 'count', value: { intValue: '-9007199254740993' } });
    expect(logRecord.attributes[4]).toEqual({ key: 'blob', value: { bytesValue: 'AP8H' } });
    const decoded = decodeJsonRequest(text);
    expect(decoded.request).toEqual(request(record()));
    expect(decoded.records.map((r) => r.path)).toEqual(['resourceLogs[0].scopeLogs[0].logRecords[0]']);
  });

  it('is canonical: encoding what it decoded gives the same bytes', () => {
    const text = encodeJsonRequest(request(record()));
    expect(encodeJsonRequest(decodeJsonRequest(text).request)).toBe(text);
    expect(encodeJsonRequest(decodeProtobufRequest(encodeProtobufRequest(request(record()))).request)).toBe(
      text,
    );
  });

  it('accepts what senders legitimately vary: numbers for 64-bit values, unknown keys, nulls', () => {
    const decoded = decodeJsonRequest(
      jsonBody({ timeUnixNano: 1764662400, futureField: { x: 1 }, body: null, severityNumber: '9' }),
    );
    expect(decoded.problems).toEqual([]);
    const first = [...locatedRecords(decoded.request)][0]?.record;
    expect(first?.timeUnixNano).toBe(1_764_662_400n);
    expect(first?.severityNumber).toBe(9);
    expect(first?.body).toBeUndefined();
  });

  it('names each wrong type by path and keeps the records beside it', () => {
    const decoded = decodeJsonRequest(
      jsonBody(
        jsonRecord([{ key: 'a', value: { stringValue: 'fine' } }]),
        jsonRecord([{ key: 'b', value: { intValue: 'twelve' } }]),
        jsonRecord([], { traceId: 'xyz' }),
        jsonRecord([{ key: 'c', value: { boolValue: 'yes' } }]),
        'not a record',
        jsonRecord([{ key: 'd', value: { stringValue: 'x', intValue: '1' } }]),
      ),
    );
    expect(decoded.problems.map((p) => `${p.path}: ${p.message}`)).toEqual([
      'resourceLogs[0].scopeLogs[0].logRecords[1].attributes[0].value.intValue: expected a 64-bit integer as a decimal string, got a string of 6 characters',
      'resourceLogs[0].scopeLogs[0].logRecords[2].traceId: expected 32 hex digits, got a string of 3 characters',
      'resourceLogs[0].scopeLogs[0].logRecords[3].attributes[0].value.boolValue: expected a boolean, got a string of 3 characters',
      'resourceLogs[0].scopeLogs[0].logRecords[4]: expected an object, got a string of 12 characters',
      'resourceLogs[0].scopeLogs[0].logRecords[5].attributes[0].value: sets more than one value (stringValue, intValue)',
    ]);
    expect([...locatedRecords(decoded.request)]).toHaveLength(1);
  });

  it('counts every record under a broken resource or scope as lost to it', () => {
    const decoded = decodeJsonRequest(
      JSON.stringify({
        resourceLogs: [
          { resource: { attributes: 'x' }, scopeLogs: [{ logRecords: [{}, {}] }, { logRecords: [{}] }] },
          { scopeLogs: [{ scope: { name: 7 }, logRecords: [{}, {}] }, { logRecords: [{}] }] },
        ],
      }),
    );
    expect(decoded.problems).toEqual([
      {
        path: 'resourceLogs[0].resource.attributes',
        message: 'expected an array, got a string of 1 characters',
        records: 3,
      },
      {
        path: 'resourceLogs[1].scopeLogs[0].scope.name',
        message: 'expected a string, got number 7',
        records: 2,
      },
    ]);
    expect([...locatedRecords(decoded.request)]).toHaveLength(1);
  });

  it('refuses a body that is not a JSON object', () => {
    expect(() => decodeJsonRequest('{"resourceLogs": [')).toThrow(/body is not JSON/);
    expect(() => decodeJsonRequest('[]')).toThrow(/not a JSON object/);
    expect(() => decodeJsonRequest('{"resourceLogs": {}}')).toThrow(/resourceLogs: expected an array/);
  });

  it('survives nesting far beyond the limit without exhausting the stack', () => {
    const depth = 100_000;
    const deep = `${'{"arrayValue":{"values":['.repeat(depth)}{}${']}}'.repeat(depth)}`;
    const text = jsonBody(jsonRecord([{ key: 'deep', value: 'DEEP' }])).replace('"DEEP"', deep);
    const decoded = decodeJsonRequest(text);
    expect(decoded.problems[0]?.message).toMatch(/nested deeper than 32 levels/);
  });

  it('encodes and reads partial success', () => {
    const response = { partialSuccess: { rejectedLogRecords: 2n, errorMessage: 'x' } };
    expect(decodeJsonResponse(encodeJsonResponse(response))).toEqual(response);
    expect(encodeJsonResponse({})).toBe('{}');
    expect(decodeJsonResponse('')).toEqual({});
  });
});
