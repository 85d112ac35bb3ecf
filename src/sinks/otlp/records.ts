import type { AnyValue, KeyValue, LogRecord, LogsRequest } from '../../otlp/model.ts';
import { EMPTY_RECORD } from '../../otlp/model.ts';
import type { OutboxEvent } from '../../pipeline/envelope.ts';
import { VERSION } from '../../version.ts';
import { type EnvelopeFields, envelopeFields, epochNanos } from '../shared/envelope-fields.ts';

/**
 * One event as an OTLP log record: the event id in `log.record.uid` (the semantic conventions' record id),
 * the provider's raw JSON verbatim as the string body, the envelope's fields as `auditlog.*` attributes,
 * the event time as Timestamp (nanoseconds kept) and the shipper's first sight as ObservedTimestamp. Raw
 * bytes that were not valid UTF-8 (`rawBase64`) go as a bytes body instead, exactly.
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
  const head = JSON.parse(`${event.line.slice(0, at)}}`) as Head;
  // Bytes that were not valid UTF-8 go as a bytes body, exactly; `raw` holds replacement characters.
  const body: AnyValue =
    typeof head.rawBase64 === 'string'
      ? { kind: 'bytes', value: new Uint8Array(Buffer.from(head.rawBase64, 'base64')) }
      : { kind: 'string', value: raw };
  return {
    ...EMPTY_RECORD,
    timeUnixNano: BigInt(time),
    observedTimeUnixNano: BigInt(event.seenAtMs) * 1_000_000n,
    body,
    attributes: attributesOf(fields, head),
  };
}

/** Envelope fields envelopeFields does not model, read from the same (small) envelope head. */
interface Head {
  readonly originalId?: unknown;
  readonly rawSha256?: unknown;
  readonly rawBase64?: unknown;
  readonly anomalies?: unknown;
}

function attributesOf(fields: EnvelopeFields, head: Head): KeyValue[] {
  const out: KeyValue[] = [];
  const add = (key: string, value: string | undefined): void => {
    if (value !== undefined && value !== '') out.push({ key, value: { kind: 'string', value } });
  };
  add('log.record.uid', fields.id);
  if (typeof head.originalId === 'string') add('auditlog.original_id', head.originalId);
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
  if (typeof head.rawSha256 === 'string') add('auditlog.raw_sha256', head.rawSha256);
  if (Array.isArray(head.anomalies) && head.anomalies.length > 0) {
    const values: AnyValue[] = head.anomalies.map((a) => ({ kind: 'string', value: String(a) }));
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
