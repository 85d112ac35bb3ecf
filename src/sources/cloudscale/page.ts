/**
 * One response of `GET /v1/project-logs`: `{next, poll_more, results: [...]}` (research §4.3). Strict
 * about what the poller needs (a `results` array, string-or-null links, a usable `timestamp`), lenient
 * about the rest: most entry fields are known only from a third-party client, so unknown shapes are
 * kept in `raw`, mapped where they are recognisable, and noted as anomalies where they are not.
 */
import { z } from 'zod';
import type { Actor, AuditEvent, Resource, ScopeRef } from '../../pipeline/envelope.ts';
import { asRecord, compact, describeType, optional, str } from '../event-fields.ts';
import { parseJsonPage, type RawElement, rawAndAnomalies } from '../json-page.ts';
import { parseRfc3339, type Timestamp } from '../timestamp.ts';

const pageSchema = z.object({
  results: z.array(z.unknown()),
  next: z.string().nullish(),
  poll_more: z.string().nullish(),
});

/** One entry of `results`. */
export type RawEntry = RawElement;

export interface ParsedPage {
  readonly entries: readonly RawEntry[];
  /** The next page of what is visible now; undefined at the end (`null`). */
  readonly next: string | undefined;
  /** Where to ask for entries not returned yet; always present on the real API. */
  readonly pollMore: string | undefined;
}

/** What parsePage throws; shared by the providers, exported here so callers need only this module. */
export { MalformedPageError } from '../json-page.ts';

export function parsePage(body: string | Buffer): ParsedPage {
  const { page, elements } = parseJsonPage(body, pageSchema, 'results');
  return { entries: elements, next: page.next ?? undefined, pollMore: page.poll_more ?? undefined };
}

/** Why an entry lacks what every event needs (an object with a time), naming the field. */
export interface EntryDefect {
  readonly field: 'entry' | 'timestamp';
  readonly message: string;
}

export function entryDefects(value: unknown): EntryDefect[] {
  const entry = asRecord(value);
  if (!entry) return [{ field: 'entry', message: `expected an object, got ${describeType(value)}` }];
  if (typeof entry.timestamp !== 'string' || !parseRfc3339(entry.timestamp)) {
    return [
      {
        field: 'timestamp',
        message: `expected an ISO 8601 date-time, got ${describeType(entry.timestamp)}`,
      },
    ];
  }
  return [];
}

/** The entry's time, when it has a usable one. */
export function entryTime(value: unknown): Timestamp | undefined {
  const timestamp = asRecord(value)?.timestamp;
  return typeof timestamp === 'string' ? parseRfc3339(timestamp) : undefined;
}

/**
 * Maps one project-log entry to the common envelope; `raw` stays the provider's bytes. Defects the
 * caller decided to accept are filled in (time = `fallbackTimeMs`, when the entry was fetched) and
 * recorded as anomalies, as are fields whose shape is not recognised.
 */
export function toAuditEvent(
  entry: RawEntry,
  scope: ScopeRef,
  id: string,
  fallbackTimeMs: number,
): AuditEvent {
  const value = asRecord(entry.value) ?? {};
  const anomalies = entryDefects(entry.value).map((d) => `${d.field}: ${d.message}`);
  const parsed = entryTime(entry.value);
  const time = parsed ?? { ms: fallbackTimeMs, iso: new Date(fallbackTimeMs).toISOString() };
  if (!parsed) anomalies.push('time is when the shipper fetched the entry');
  const actor = mapActor(value.actor, anomalies);
  const resource = mapSubject(value.subject, anomalies);
  const sourceIp = value.ip_address;
  if (sourceIp !== undefined && sourceIp !== null && typeof sourceIp !== 'string') {
    anomalies.push(`ip_address: expected a string or null, got ${describeType(sourceIp)}`);
  }
  if (value.action !== undefined && typeof value.action !== 'string') {
    anomalies.push(`action: expected a string, got ${describeType(value.action)}`);
  }
  return {
    id,
    provider: 'cloudscale',
    scope,
    time: time.iso,
    timeMs: time.ms,
    ...optional('action', str(value.action)),
    ...optional('actor', actor),
    ...optional('sourceIp', str(sourceIp)),
    ...optional('resource', resource),
    ...rawAndAnomalies(entry, anomalies),
  };
}

/**
 * `actor` holds exactly one of `user: {email}`, `api_token: {uuid, description}`, `system: {}`,
 * `admin: {}` (cloudscale staff) according to a third-party client; the announcement shows an e-mail
 * address. Any other single-key object maps by its key, a bare string by whether it looks like e-mail.
 */
function mapActor(actor: unknown, anomalies: string[]): Actor | undefined {
  if (actor === undefined || actor === null) return undefined;
  if (typeof actor === 'string') {
    if (actor === '') return undefined;
    return actor.includes('@') ? { email: actor, type: 'user' } : { id: actor };
  }
  const tagged = singleTag(actor);
  if (!tagged) {
    anomalies.push(`actor: unrecognised shape (${describeType(actor)})`);
    return undefined;
  }
  const { tag, body } = tagged;
  const type = tag === 'api_token' ? 'api-token' : tag;
  return compact({ id: str(body.uuid) ?? str(body.id), email: str(body.email), type });
}

/** `subject` holds one of `organization: {href, uuid, name}`, `user: {email}`, `project: {uuid, name}`. */
function mapSubject(subject: unknown, anomalies: string[]): Resource | undefined {
  if (subject === undefined || subject === null) return undefined;
  const tagged = singleTag(subject);
  if (!tagged) {
    anomalies.push(`subject: unrecognised shape (${describeType(subject)})`);
    return undefined;
  }
  const { tag, body } = tagged;
  return compact({
    id: str(body.uuid) ?? str(body.email) ?? str(body.href),
    name: str(body.name),
    type: tag,
  });
}

/** `{kind: {...}}` with exactly one key whose value is an object. */
function singleTag(value: unknown): { tag: string; body: Record<string, unknown> } | undefined {
  const record = asRecord(value);
  if (!record) return undefined;
  const keys = Object.keys(record);
  if (keys.length !== 1) return undefined;
  const tag = keys[0] as string;
  const body = record[tag] === null ? {} : asRecord(record[tag]);
  return body ? { tag, body } : undefined;
}
