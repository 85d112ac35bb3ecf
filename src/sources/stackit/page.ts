import { z } from 'zod';
import type { Actor, AuditEvent, ScopeRef } from '../../pipeline/envelope.ts';
import { arrayElementSpans } from '../json-spans.ts';
import { parseRfc3339 } from '../timestamp.ts';

/** The page envelope (`ListAuditLogEntriesResponse`); unknown fields are tolerated, as the SDKs do. */
const pageSchema = z.object({
  items: z.array(z.unknown()),
  cursor: z.string().nullish(),
});

export interface RawItem {
  readonly index: number;
  readonly value: unknown;
  /** The item's JSON text exactly as it appeared in the response. */
  readonly raw: string;
}

export interface ParsedPage {
  readonly items: readonly RawItem[];
  readonly cursor: string | undefined;
}

/** A page that cannot be read as a whole; the poll fails and is retried from its last commit. */
export class MalformedPageError extends Error {
  readonly kind: 'invalid_json' | 'invalid_response';

  constructor(kind: 'invalid_json' | 'invalid_response', message: string) {
    super(message);
    this.name = 'MalformedPageError';
    this.kind = kind;
  }
}

export function parsePage(body: string): ParsedPage {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new MalformedPageError('invalid_json', `response is not JSON (${detail}; ${body.length} bytes)`);
  }
  const page = pageSchema.safeParse(json);
  if (!page.success) {
    const problems = page.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`);
    throw new MalformedPageError('invalid_response', `unexpected response shape: ${problems.join('; ')}`);
  }
  const spans = arrayElementSpans(body, 'items');
  if (!spans || spans.length !== page.data.items.length) {
    throw new MalformedPageError('invalid_response', 'could not locate the items in the response text');
  }
  const items = page.data.items.map((value, index) => {
    const [start, end] = spans[index] as [number, number];
    return { index, value, raw: body.slice(start, end) };
  });
  return { items, cursor: page.data.cursor ?? undefined };
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
    ...(anomalies.length > 0 ? { anomalies } : {}),
    raw: item.raw,
  };
}

/** STACKIT service accounts have `…@sa.stackit.cloud` addresses. */
function actorType(email: string | undefined): string | undefined {
  if (email === undefined) return undefined;
  return email.endsWith('@sa.stackit.cloud') ? 'service-account' : 'user';
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/** Drops undefined fields; undefined when nothing is left. */
function compact<T extends Record<string, string | undefined>>(
  value: T,
): { [K in keyof T]?: string } | undefined {
  const entries = Object.entries(value).filter(([, v]) => v !== undefined);
  return entries.length > 0 ? (Object.fromEntries(entries) as { [K in keyof T]?: string }) : undefined;
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value === undefined) return 'nothing';
  return typeof value === 'string'
    ? `"${value.length > 40 ? `${value.slice(0, 40)}…` : value}"`
    : typeof value;
}
