import { createHash } from 'node:crypto';

/** Which log of which provider an event came from, e.g. `{kind: 'project', id: '2f3c…'}`. */
export interface ScopeRef {
  readonly kind: string;
  readonly id: string;
}

export interface Actor {
  readonly id?: string;
  readonly email?: string;
  readonly type?: string;
}

export interface Resource {
  readonly id?: string;
  readonly name?: string;
  readonly type?: string;
}

/**
 * The common envelope every source produces and every sink receives. The normalized fields make
 * cross-provider queries possible; `raw` is the provider's JSON text for this event, byte for byte,
 * because an audit trail that was re-encoded on the way is no longer the provider's record.
 */
export interface AuditEvent {
  /**
   * The provider's event id, or a content hash where the provider gives none. The dedupe key. A copy
   * whose id was first committed with other bytes gets a derived id (`<id>~sha256:<its rawSha256>`).
   */
  readonly id: string;
  /** Only on such a conflicting copy: the id the provider gave it. */
  readonly originalId?: string;
  /** Provider type, e.g. `stackit`. */
  readonly provider: string;
  readonly scope: ScopeRef;
  /** Event time as RFC 3339 UTC, keeping the provider's sub-millisecond digits. */
  readonly time: string;
  /** Event time in epoch milliseconds (for windows, partitions and the seen-set). */
  readonly timeMs: number;
  /** When the provider's log received the event, where it says. */
  readonly receivedAt?: string;
  readonly action?: string;
  readonly actor?: Actor;
  readonly sourceIp?: string;
  readonly resource?: Resource;
  /** What was wrong with this event as the provider sent it, and what was derived instead. */
  readonly anomalies?: readonly string[];
  /**
   * The provider's JSON for this event, verbatim. When its bytes are not valid UTF-8 (JSON text cannot
   * carry them), their decoding with U+FFFD in place of each invalid sequence, and `rawBytes` has them.
   */
  readonly raw: string;
  /** Only when the provider's bytes for this event are not valid UTF-8: exactly those bytes. */
  readonly rawBytes?: Uint8Array;
}

/** An envelope as it travels through an outbox stream to one sink. */
export interface OutboxEvent {
  /** Redis stream entry id; the handle a delivery worker acknowledges. */
  readonly entryId: string;
  readonly id: string;
  readonly scopeKey: string;
  readonly timeMs: number;
  /** When the shipper first committed the event (freshness and late-arrival metrics). */
  readonly seenAtMs: number;
  /** The serialized envelope: one line of JSON, no trailing newline. */
  readonly line: string;
}

/**
 * One line of JSON: the envelope's fields, `seenAt`, a SHA-256 of the raw bytes (so anyone can check
 * later that `raw` is what the provider sent), then `raw` spliced in verbatim rather than re-encoded.
 * Bytes that are not valid UTF-8 travel as `rawBase64` (standard alphabet, padded) before `raw`, and
 * `rawSha256` is over them, not over the replacement characters in `raw`.
 */
export function serializeEnvelope(event: AuditEvent, seenAtMs: number): string {
  const meta = {
    id: event.id,
    originalId: event.originalId,
    provider: event.provider,
    scope: { kind: event.scope.kind, id: event.scope.id },
    time: event.time,
    receivedAt: event.receivedAt,
    seenAt: new Date(seenAtMs).toISOString(),
    action: event.action,
    actor: event.actor,
    sourceIp: event.sourceIp,
    resource: event.resource,
    anomalies: event.anomalies && event.anomalies.length > 0 ? event.anomalies : undefined,
    rawSha256: rawSha256(event),
    rawBase64: event.rawBytes ? Buffer.from(event.rawBytes).toString('base64') : undefined,
  };
  return `${JSON.stringify(meta).slice(0, -1)},"raw":${singleLine(event.raw)}}`;
}

/** SHA-256 of the provider's bytes of the event: what `rawSha256` says and the seen-set remembers per id. */
export function rawSha256(event: AuditEvent): string {
  return event.rawBytes ? createHash('sha256').update(event.rawBytes).digest('hex') : sha256Hex(event.raw);
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * JSON text can only hold a line break as whitespace between tokens (inside strings it must be escaped),
 * so replacing such breaks by spaces keeps the value identical and the output one line. Compact provider
 * responses, the norm, pass through untouched.
 */
function singleLine(raw: string): string {
  return /[\r\n]/.test(raw) ? raw.replace(/\r\n|[\r\n]/g, ' ') : raw;
}
