/**
 * The simulator's audit events as STACKIT's Telemetry Router pushes them: OTLP log records in the format
 * of STACKIT's "data formats" page (research update §2.3). Resource attributes empty, scope
 * `stackit-audit-provider`, `Timestamp` in nanoseconds (when the event occurred), a human `Body`, and the
 * attributes on the log record. The v2 entry's `id` becomes `stackit.log.id` (whether STACKIT keeps them
 * equal is unconfirmed; the simulator does, so both paths of one event can be compared).
 */
import type { KeyValue, LogRecord, LogsRequest } from '../../otlp/model.ts';
import type { TruthEvent } from '../truth.ts';

export const AUDIT_SCOPE_NAME = 'stackit-audit-provider';

const RESOURCE_TYPE: Readonly<Record<string, string>> = {
  organization: 'ORGANIZATION',
  folder: 'FOLDER',
  project: 'PROJECT',
};

type Json = Record<string, unknown>;

function str(key: string, value: unknown): KeyValue[] {
  return typeof value === 'string' ? [{ key, value: { kind: 'string', value } }] : [];
}

/** RFC 3339 text with up to nanosecond precision → Unix nanoseconds. */
export function rfc3339ToNanos(text: string, fallbackMs: number): bigint {
  const match = /^(.*T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/i.exec(text);
  if (!match) return BigInt(fallbackMs) * 1_000_000n;
  const seconds = Date.parse(`${match[1]}${match[3]}`);
  if (Number.isNaN(seconds)) return BigInt(fallbackMs) * 1_000_000n;
  const fraction = (match[2] ?? '').padEnd(9, '0');
  return BigInt(seconds) * 1_000_000n + BigInt(fraction);
}

/** One audit event as the router's OTLP log record. */
export function auditLogRecord(event: TruthEvent): LogRecord {
  const entry = JSON.parse(event.raw) as Json;
  const initiator = (entry.initiator ?? {}) as Json;
  const request = (entry.request ?? {}) as Json;
  const endpoint = typeof request.endpoint === 'string' ? request.endpoint : '';
  const space = endpoint.indexOf(' ');
  const method = space > 0 ? endpoint.slice(0, space) : undefined;
  const path = space > 0 ? endpoint.slice(space + 1) : undefined;
  const action = typeof entry.eventName === 'string' ? entry.eventName : 'unknown';
  const attributes: KeyValue[] = [
    ...str('service.name', action.split('.')[0]),
    ...str('service.instance.id', entry.resourceId ?? event.scope.id),
    ...str('cloud.region', entry.region ?? 'global'),
    ...str('cloud.provider', 'stackit'),
    ...str('stackit.resource.type', RESOURCE_TYPE[event.scope.kind] ?? 'SYSTEM'),
    ...str('stackit.resource.id', event.scope.id),
    ...str('stackit.log.id', event.id),
    ...str('stackit.log.type', 'AUDIT'),
    ...str('stackit.action', action),
    ...str('stackit.visibility', entry.visibility),
    ...str('stackit.initiator', initiator.id),
    ...(request.body !== undefined ? str('stackit.request.body', JSON.stringify(request.body)) : []),
    ...str('user_agent.original', entry.userAgent),
    ...str('http.request.method', method),
    ...str('url.path', path),
    ...str('client.address', entry.sourceIpAddress),
  ];
  const timeUnixNano = rfc3339ToNanos(event.eventTimeText, event.eventTimeMs);
  return {
    timeUnixNano,
    observedTimeUnixNano: BigInt(event.visibleAtMs) * 1_000_000n,
    severityNumber: entry.severity === 'ERROR' ? 17 : 9,
    severityText: entry.severity === 'ERROR' ? 'ERROR' : 'INFO',
    body: { kind: 'string', value: `${action} by ${String(initiator.id ?? 'unknown')}` },
    attributes,
    droppedAttributesCount: 0,
    flags: 0,
    traceId: new Uint8Array(),
    spanId: new Uint8Array(),
    eventName: '',
  };
}

/** Records in one export request, as the data-formats example shows them: no resource attributes. */
export function auditLogsRequest(records: readonly LogRecord[]): LogsRequest {
  return {
    resourceLogs: [
      {
        resource: { attributes: [], droppedAttributesCount: 0 },
        schemaUrl: '',
        scopeLogs: [
          {
            scope: { name: AUDIT_SCOPE_NAME, version: '', attributes: [], droppedAttributesCount: 0 },
            logRecords: records,
            schemaUrl: '',
          },
        ],
      },
    ],
  };
}

/** The `stackit.log.id` of a record (every record this module makes has one). */
export function logIdOf(record: LogRecord): string {
  const kv = record.attributes.find((a) => a.key === 'stackit.log.id');
  return kv?.value.kind === 'string' ? kv.value.value : '';
}
