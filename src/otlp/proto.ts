import protobuf from 'protobufjs';

/**
 * The message definitions of the OTLP logs signal, written from the opentelemetry-proto specification
 * (common/v1, resource/v1, logs/v1, collector/logs/v1). Only what the logs subset needs: no entity refs,
 * no profiles string-table indexes. Unknown fields on the wire are skipped, as protobuf requires, so a
 * newer sender still decodes.
 */
const OTLP_LOGS_PROTO = `
syntax = "proto3";

package opentelemetry.proto.common.v1;

message AnyValue {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
    ArrayValue array_value = 5;
    KeyValueList kvlist_value = 6;
    bytes bytes_value = 7;
  }
}

message ArrayValue {
  repeated AnyValue values = 1;
}

message KeyValueList {
  repeated KeyValue values = 1;
}

message KeyValue {
  string key = 1;
  AnyValue value = 2;
}

message InstrumentationScope {
  string name = 1;
  string version = 2;
  repeated KeyValue attributes = 3;
  uint32 dropped_attributes_count = 4;
}

message Resource {
  repeated KeyValue attributes = 1;
  uint32 dropped_attributes_count = 2;
}

message ResourceLogs {
  Resource resource = 1;
  repeated ScopeLogs scope_logs = 2;
  string schema_url = 3;
}

message ScopeLogs {
  InstrumentationScope scope = 1;
  repeated LogRecord log_records = 2;
  string schema_url = 3;
}

message LogRecord {
  fixed64 time_unix_nano = 1;
  fixed64 observed_time_unix_nano = 11;
  int32 severity_number = 2;
  string severity_text = 3;
  AnyValue body = 5;
  repeated KeyValue attributes = 6;
  uint32 dropped_attributes_count = 7;
  fixed32 flags = 8;
  bytes trace_id = 9;
  bytes span_id = 10;
  string event_name = 12;
}

message ExportLogsServiceRequest {
  repeated ResourceLogs resource_logs = 1;
}

message ExportLogsPartialSuccess {
  int64 rejected_log_records = 1;
  string error_message = 2;
}

message ExportLogsServiceResponse {
  ExportLogsPartialSuccess partial_success = 1;
}

// google.rpc.Status and RetryInfo: the error body of OTLP/HTTP and gRPC's rich error details.
message Any {
  string type_url = 1;
  bytes value = 2;
}

message Status {
  int32 code = 1;
  string message = 2;
  repeated Any details = 3;
}

message Duration {
  int64 seconds = 1;
  int32 nanos = 2;
}

message RetryInfo {
  Duration retry_delay = 1;
}
`;

// One package for all messages keeps the definitions short; protobuf's wire format carries field numbers,
// never package or message names, so this is wire-compatible with the split upstream files. (The gRPC
// method name is the one place the real package matters: see GRPC_EXPORT_PATH.)
const root = protobuf.parse(OTLP_LOGS_PROTO).root;

export const ExportLogsServiceRequestType = root.lookupType(
  'opentelemetry.proto.common.v1.ExportLogsServiceRequest',
);
export const ExportLogsServiceResponseType = root.lookupType(
  'opentelemetry.proto.common.v1.ExportLogsServiceResponse',
);

const StatusType = root.lookupType('opentelemetry.proto.common.v1.Status');
const RetryInfoType = root.lookupType('opentelemetry.proto.common.v1.RetryInfo');

/** gRPC status codes the receiver answers with. */
export const GrpcCode = {
  INVALID_ARGUMENT: 3,
  RESOURCE_EXHAUSTED: 8,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/**
 * A google.rpc.Status, optionally with a RetryInfo detail: OTLP clients retry RESOURCE_EXHAUSTED only
 * when the server says when, and honour the delay for UNAVAILABLE too.
 */
export function encodeStatus(code: number, message: string, retryAfterSeconds?: number): Uint8Array {
  const details =
    retryAfterSeconds === undefined
      ? []
      : [
          {
            typeUrl: 'type.googleapis.com/google.rpc.RetryInfo',
            value: RetryInfoType.encode({ retryDelay: { seconds: retryAfterSeconds } }).finish(),
          },
        ];
  return StatusType.encode({ code, message, details }).finish();
}

export function decodeStatus(bytes: Uint8Array): { code: number; message: string } {
  const status = StatusType.toObject(StatusType.decode(bytes), { defaults: true }) as {
    code: number;
    message: string;
  };
  return { code: status.code, message: status.message };
}

/** The gRPC method OTLP exporters call. */
export const GRPC_EXPORT_PATH = '/opentelemetry.proto.collector.logs.v1.LogsService/Export';
