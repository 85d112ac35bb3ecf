import type { AnyValue, KeyValue, LogRecord, LogsRequest } from '../../otlp/model.ts';
import { EMPTY_RECORD } from '../../otlp/model.ts';
import type { OutboxEvent } from '../../pipeline/envelope.ts';
import { VERSION } from '../../version.ts';
import { type EnvelopeFields, envelopeFields, epochNanos } from '../shared/envelope-fields.ts';

/**
 * One event as an OTLP log record: the event id in `log.record.uid` (the semantic conventions' record id),
 * the provider's raw JSON verbatim as the string body, the envelope's fields as `auditlog.*` attributes,
 * the event time as Timestamp (nanoseconds kept) and the shipper's first sight as ObservedTimestamp.
 * Returns why not when the outbox line is unusable.
 */
export function eventRecord(event: OutboxEvent): LogRecord | string {
  const fields = envelopeFields(event.line);
  if (typeof fields === 'string') return `event ${event.id}: ${fields}`;
  const at = event.line.indexOf(',"raw":');
  if (at === -1 || !event.line.endsWith('}')) return `event ${event.id}: the event line has no raw field`;
  const raw = event.line.slice(at + ',"raw":'.length, -1);
  const time = epochNanos(fields.time);
  if (time === undefined) return `event ${event.id}: time "${fields.time}" is not RFC 3339 UTC`;
  return {
    ...EMPTY_RECORD,
    timeUnixNano: BigInt(time),
    observedTimeUnixNano: BigInt(event.seenAtMs) * 1_000_000n,
    body: { kind: 'string', value: raw },
    attributes: attributesOf(fields, event.line.slice(0, at)),
  };
}

function attributesOf(fields: EnvelopeFields, head: string): KeyValue[] {
  const out: KeyValue[] = [];
  const add = (key: string, value: string | undefined): void => {
    if (value !== undefined && value !== '') out.push({ key, value: { kind: 'string', value } });
  };
  add('log.record.uid', fields.id);
  add('auditlog.provider', fields.provider);
  add('auditlog.scope.kind', fields.scope.kind);
  add('auditlog.scope.id', fields.scope.id);
  add('auditlog.action', fields.action);
  add('auditlog.actor.id', fields.actor?.id);
  add('auditlog.actor.email', fields.actor?.email);
  add('auditlog.actor.type', fields.actor?.type);
  add('auditlog.source_ip', fields.sourceIp);
  add('auditlog.resource.id', fields.resource?.id);
  add('auditlog.resource.name', fields.resource?.name);
  add('auditlog.resource.type', fields.resource?.type);
  add('auditlog.received_at', fields.receivedAt);
  // Two fields envelopeFields does not model, read from the same (small) envelope head.
  const extra = JSON.parse(`${head}}`) as { rawSha256?: unknown; anomalies?: unknown };
  if (typeof extra.rawSha256 === 'string') add('auditlog.raw_sha256', extra.rawSha256);
  if (Array.isArray(extra.anomalies) && extra.anomalies.length > 0) {
    const values: AnyValue[] = extra.anomalies.map((a) => ({ kind: 'string', value: String(a) }));
    out.push({ key: 'auditlog.anomalies', value: { kind: 'array', values } });
  }
  return out;
}

/** One request: the records under the configured resource and the shipper's instrumentation scope. */
export function exportRequest(
  records: readonly LogRecord[],
  resourceAttributes: Record<string, string>,
): LogsRequest {
  return {
    resourceLogs: [
      {
        resource: {
          attributes: Object.entries(resourceAttributes).map(([key, value]) => ({
            key,
            value: { kind: 'string', value },
          })),
          droppedAttributesCount: 0,
        },
        schemaUrl: '',
        scopeLogs: [
          {
            scope: { name: 'auditlog-shipper', version: VERSION, attributes: [], droppedAttributesCount: 0 },
            schemaUrl: '',
            logRecords: records,
          },
        ],
      },
    ],
  };
}
