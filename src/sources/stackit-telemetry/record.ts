import { encodeJsonRequest } from '../../otlp/json.ts';
import { type AnyValue, attribute, type LocatedRecord, singleRecordRequest } from '../../otlp/model.ts';
import { type AuditEvent, type ScopeRef, sha256Hex } from '../../pipeline/envelope.ts';
import { scopeKey } from '../source.ts';

/** The scope kinds of `stackit.resource.type` that are polled scopes too (same state key). */
const SCOPE_KINDS: Readonly<Record<string, string>> = {
  ORGANIZATION: 'organization',
  FOLDER: 'folder',
  PROJECT: 'project',
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface MappedRecord {
  readonly event: AuditEvent;
  readonly scopeKey: string;
  readonly mapped: boolean;
}

/**
 * One STACKIT audit record pushed by the Telemetry Router (format: STACKIT's "data formats" page) as an
 * event. Attributes are read from the log record, then the resource (STACKIT leaves the resource empty
 * today; a collector in between may move them). `raw` is the record as canonical OTLP/JSON, as a request
 * holding only it with its resource and scope, so it is valid OTLP on its own.
 *
 * What is missing is never guessed silently: no `stackit.log.id` → an id from the content hash; no scope
 * → scope `unknown`; no time → observed time, else arrival time; each with an anomaly.
 */
export function mapTelemetryRecord(located: LocatedRecord, receivedAtMs: number): MappedRecord {
  const { record } = located;
  const get = (key: string): string | undefined => {
    const value = attribute(record.attributes, key) ?? attribute(located.resource?.attributes ?? [], key);
    return asString(value);
  };
  const raw = encodeJsonRequest(singleRecordRequest(located));
  const anomalies: string[] = [];

  let id = get('stackit.log.id');
  if (id === undefined || id === '') {
    id = `otlp-sha256:${sha256Hex(raw)}`;
    anomalies.push('stackit.log.id: missing; id derived from the record’s content hash');
  }

  const type = get('stackit.resource.type');
  const resourceId = get('stackit.resource.id');
  let scope: ScopeRef;
  const kind = type === undefined ? undefined : (SCOPE_KINDS[type.toUpperCase()] ?? type.toLowerCase());
  if (
    kind === undefined ||
    !/^[a-z][a-z0-9_-]{0,31}$/.test(kind) ||
    resourceId === undefined ||
    resourceId === ''
  ) {
    scope = { kind: 'unknown', id: 'unknown' };
    anomalies.push('stackit.resource.type/stackit.resource.id: missing or invalid; scope set to unknown');
  } else {
    scope = { kind, id: UUID.test(resourceId) ? resourceId.toLowerCase() : resourceId };
  }

  const time = timeOf(record.timeUnixNano) ?? timeOf(record.observedTimeUnixNano);
  if (record.timeUnixNano === 0n || timeOf(record.timeUnixNano) === undefined) {
    anomalies.push(
      `Timestamp: missing or out of range; time taken from ${time ? 'ObservedTimestamp' : 'the arrival of the request'}`,
    );
  }
  const eventTime = time ?? { iso: new Date(receivedAtMs).toISOString(), ms: receivedAtMs };
  const observed = record.observedTimeUnixNano === 0n ? undefined : timeOf(record.observedTimeUnixNano);

  const initiator = get('stackit.initiator');
  const instance = get('service.instance.id');
  const service = get('service.name');
  const event: AuditEvent = {
    id,
    provider: 'stackit',
    scope,
    time: eventTime.iso,
    timeMs: eventTime.ms,
    ...(observed ? { receivedAt: observed.iso } : {}),
    ...optional('action', get('stackit.action')),
    ...(initiator ? { actor: { id: initiator } } : {}),
    ...optional('sourceIp', get('client.address')),
    ...(instance || service
      ? { resource: { ...(instance ? { id: instance } : {}), ...(service ? { type: service } : {}) } }
      : {}),
    ...(anomalies.length > 0 ? { anomalies } : {}),
    raw,
  };
  return { event, scopeKey: scopeKey('stackit', scope), mapped: anomalies.length === 0 };
}

const MAX_NS = 253_402_300_799_999_999_999n; // 9999-12-31T23:59:59.999999999Z

/** Nanoseconds since the epoch as RFC 3339 with all nine fractional digits, and epoch ms. */
export function timeOf(ns: bigint): { iso: string; ms: number } | undefined {
  if (ns <= 0n || ns > MAX_NS) return undefined;
  const ms = Number(ns / 1_000_000n);
  const fraction = (ns % 1_000_000_000n).toString().padStart(9, '0');
  return { iso: `${new Date(ms).toISOString().slice(0, 19)}.${fraction}Z`, ms };
}

function asString(value: AnyValue | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (value.kind === 'string') return value.value;
  if (value.kind === 'int') return value.value.toString();
  return undefined;
}

function optional<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined || value === '' ? {} : { [key]: value }) as { [P in K]?: string };
}
