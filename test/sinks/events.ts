import { type AuditEvent, type OutboxEvent, serializeEnvelope } from '../../src/pipeline/envelope.ts';

let entry = 0;

export interface EventSpec {
  readonly id: string;
  /** RFC 3339 UTC with any fraction; default: now with microseconds. */
  readonly time?: string;
  readonly project?: string;
  readonly action?: string;
  readonly rawExtra?: string;
}

/** An outbox event as the commit script writes it: the serialized envelope with a provider raw JSON. */
export function outboxEvent(spec: EventSpec): OutboxEvent {
  const time = spec.time ?? isoMicros(Date.now());
  const project = spec.project ?? '11111111-1111-4111-8111-111111111111';
  const raw = `{"eventId":"${spec.id}","eventTimeStamp":"${time}","eventName":"${spec.action ?? 'iam.create'}"${spec.rawExtra ?? ''}}`;
  const event: AuditEvent = {
    id: spec.id,
    provider: 'stackit',
    scope: { kind: 'project', id: project },
    time,
    timeMs: Date.parse(time),
    action: spec.action ?? 'iam.create',
    actor: { email: 'alice@example.com', id: 'u-1' },
    sourceIp: '192.0.2.7',
    raw,
  };
  const seenAtMs = Date.now();
  entry++;
  return {
    entryId: `${Date.now()}-${entry}`,
    id: spec.id,
    scopeKey: `stackit:project:${project}`,
    timeMs: event.timeMs,
    seenAtMs,
    line: serializeEnvelope(event, seenAtMs),
  };
}

/** An RFC 3339 UTC time with six fraction digits (as STACKIT sends), `offsetMs` from now. */
export function isoMicros(ms: number, micros = 123): string {
  return `${new Date(ms).toISOString().slice(0, 23)}${String(micros).padStart(3, '0')}Z`;
}
