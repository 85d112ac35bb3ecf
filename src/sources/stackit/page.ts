import { z } from 'zod';
import type { Actor, AuditEvent, ScopeRef } from '../../pipeline/envelope.ts';
import { asRecord, compact, describeType, optional, str } from '../event-fields.ts';
import { parseJsonPage, type RawElement, rawAndAnomalies } from '../json-page.ts';
import { parseRfc3339 } from '../timestamp.ts';

/** The page envelope (`ListAuditLogEntriesResponse`); unknown fields are tolerated, as the SDKs do. */
const pageSchema = z.object({
  items: z.array(z.unknown()),
  cursor: z.string().nullish(),
});

/** One entry of `items`. */
export type RawItem = RawElement;

export interface ParsedPage {
  readonly items: readonly RawItem[];
  readonly cursor: string | undefined;
}

/** What parsePage throws; shared by the providers, exported here so callers need only this module. */
export { MalformedPageError } from '../json-page.ts';

export function parsePage(body: string | Buffer): ParsedPage {
  const { page, elements } = parseJsonPage(body, pageSchema, 'items');
  return { items: elements, cursor: page.cursor ?? undefined };
}

/** Why an item lacks what every event needs (an id and a time), naming the field. */
export type ItemDefect = { readonly field: 'item' | 'id' | 'eventTimeStamp'; readonly message: string };

export function itemDefects(value: unknown): ItemDefect[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return [{ field: 'item', message: `expected an object, got ${describeType(value)}` }];
  }
  const item = value as Record<string, unknown>;
  const defects: ItemDefect[] = [];
  if (typeof item.id !== 'string' || item.id === '') {
    defects.push({ field: 'id', message: `expected a non-empty string, got ${describeType(item.id)}` });
  }
  if (typeof item.eventTimeStamp !== 'string' || !parseRfc3339(item.eventTimeStamp)) {
    defects.push({
      field: 'eventTimeStamp',
      message: `expected an RFC 3339 date-time, got ${describeType(item.eventTimeStamp)}`,
    });
  }
  return defects;
}

export interface Fallbacks {
  /** Used when the item has no usable id: a hash of its bytes, stable across re-reads. */
  readonly id: string;
  /** Used when the item has no usable time. */
  readonly timeMs: number;
}

/**
 * Maps one audit-log entry to the common envelope. Defects the caller decided to accept are filled from
 * `fallbacks` and recorded as anomalies on the event, so the substitution is visible downstream.
 */
export function toAuditEvent(item: RawItem, scope: ScopeRef, fallbacks: Fallbacks): AuditEvent {
  const value = (typeof item.value === 'object' && item.value !== null ? item.value : {}) as Record<
    string,
    unknown
  >;
  const anomalies = itemDefects(item.value).map((d) => `${d.field}: ${d.message}`);
  const eventTime = typeof value.eventTimeStamp === 'string' ? parseRfc3339(value.eventTimeStamp) : undefined;
  const received =
    typeof value.receivedTimeStamp === 'string' ? parseRfc3339(value.receivedTimeStamp) : undefined;
  const time = eventTime ??
    received ?? { ms: fallbacks.timeMs, iso: new Date(fallbacks.timeMs).toISOString() };
  if (!eventTime) anomalies.push(`time taken from ${received ? 'receivedTimeStamp' : 'the polled window'}`);
  const initiator = asRecord(value.initiator);
  const actor: Actor | undefined = initiator
    ? compact({ id: str(initiator.id), email: str(initiator.email), type: actorType(str(initiator.email)) })
    : undefined;
  return {
    id: typeof value.id === 'string' && value.id !== '' ? value.id : fallbacks.id,
    provider: 'stackit',
    scope,
    time: time.iso,
    timeMs: time.ms,
    ...optional('receivedAt', received?.iso),
    ...optional('action', str(value.eventName)),
    ...optional('actor', actor),
    ...optional('sourceIp', str(value.sourceIpAddress)),
    ...optional(
      'resource',
      compact({ id: str(value.resourceId), name: str(value.resourceName), type: str(value.eventSource) }),
    ),
    ...rawAndAnomalies(item, anomalies),
  };
}

/** STACKIT service accounts have `…@sa.stackit.cloud` addresses. */
function actorType(email: string | undefined): string | undefined {
  if (email === undefined) return undefined;
  return email.endsWith('@sa.stackit.cloud') ? 'service-account' : 'user';
}
