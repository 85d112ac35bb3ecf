import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { OutboxEvent } from '../../pipeline/envelope.ts';

/** One object to write: a group of events and its deterministic key and bytes. */
export interface ObjectPlan {
  readonly key: string;
  /** Positions in the batch. */
  readonly indexes: readonly number[];
  readonly events: readonly OutboxEvent[];
  readonly body: Buffer;
  readonly contentMd5: string;
  /** SHA-256 of the uncompressed NDJSON, hex: the object's identity, also stored as metadata. */
  readonly contentSha256: string;
}

/**
 * Splits a batch into objects, one per scope and event hour, each named by its content:
 * `<prefix><provider>/<scope kind>/<scope id>/date=YYYY-MM-DD/hour=HH/<first>-<last>-<hash>.ndjson.gz`
 * where first/last are the earliest and latest event times and hash is the SHA-256 of the
 * uncompressed NDJSON. Events are sorted (time, id) first, so the same set of events always makes
 * the same bytes and the same key, whatever order they came in.
 */
export function planObjects(batch: readonly OutboxEvent[], prefix: string): ObjectPlan[] {
  const groups = new Map<string, number[]>();
  batch.forEach((event, index) => {
    const hour = new Date(event.timeMs).toISOString().slice(0, 13); // YYYY-MM-DDTHH
    const group = `${event.scopeKey}\u0000${hour}`;
    const list = groups.get(group);
    if (list) list.push(index);
    else groups.set(group, [index]);
  });
  const plans: ObjectPlan[] = [];
  for (const [group, indexes] of groups) {
    const [scopeKey, hour] = group.split('\u0000') as [string, string];
    indexes.sort((a, b) => {
      const x = batch[a] as OutboxEvent;
      const y = batch[b] as OutboxEvent;
      return x.timeMs - y.timeMs || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0);
    });
    const events = indexes.map((i) => batch[i] as OutboxEvent);
    const ndjson = Buffer.from(`${events.map((e) => e.line).join('\n')}\n`, 'utf8');
    const contentSha256 = createHash('sha256').update(ndjson).digest('hex');
    // gzip output is deterministic for the same input and level (the header carries no mtime).
    const body = gzipSync(ndjson, { level: 6 });
    const [provider = 'unknown', kind = 'unknown', ...rest] = scopeKey.split(':');
    const first = events[0] as OutboxEvent;
    const last = events.at(-1) as OutboxEvent;
    const key =
      `${prefix}${safe(provider)}/${safe(kind)}/${safe(rest.join(':') || 'unknown')}/` +
      `date=${hour.slice(0, 10)}/hour=${hour.slice(11, 13)}/` +
      `${compactTime(first.timeMs)}-${compactTime(last.timeMs)}-${contentSha256.slice(0, 16)}.ndjson.gz`;
    plans.push({
      key,
      indexes,
      events,
      body,
      contentMd5: createHash('md5').update(body).digest('base64'),
      contentSha256,
    });
  }
  return plans;
}

/** `20250304T050607123Z`: sortable, no characters that need escaping in keys. */
function compactTime(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:.]/g, '');
}

function safe(part: string): string {
  return part.replace(/[^A-Za-z0-9._-]/g, '_');
}
