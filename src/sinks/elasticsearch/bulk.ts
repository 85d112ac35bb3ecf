import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Verdict } from '../sink.ts';

/** Elasticsearch caps `_id` at 512 bytes; longer event ids become a stable hash. */
export function documentId(eventId: string): string {
  return Buffer.byteLength(eventId, 'utf8') <= 512
    ? eventId
    : `sha256-${createHash('sha256').update(eventId).digest('hex')}`;
}

/**
 * The document: the event line with `@timestamp` (the event time, all its digits) put first. The rest
 * of the line, `raw` included, is kept byte for byte.
 */
export function documentSource(line: string, time: string): string {
  return `{"@timestamp":${JSON.stringify(time)},${line.slice(1)}`;
}

export function actionLine(index: string, id: string): string {
  return JSON.stringify({ create: { _index: index, _id: id } });
}

const itemResult = z.object({
  status: z.number().int(),
  result: z.string().optional(),
  failure_store: z.string().optional(),
  error: z
    .object({
      type: z.string(),
      reason: z.string().nullish(),
      caused_by: z.object({ type: z.string(), reason: z.string().nullish() }).passthrough().optional(),
    })
    .passthrough()
    .optional(),
});

export const bulkResponseSchema = z.object({
  errors: z.boolean(),
  items: z.array(z.record(z.string(), itemResult)).optional(),
});

export type BulkItem = z.output<typeof itemResult>;

/**
 * Item errors that are about the cluster or the setup rather than the document: the event is held and
 * retried (with an alert) instead of being dead-lettered, because sending it again will work once the
 * operator fixes the cause.
 */
const SETUP_ERRORS = new Set([
  'index_not_found_exception',
  'security_exception',
  'cluster_block_exception',
  'invalid_index_name_exception',
  'index_closed_exception',
  'unavailable_shards_exception',
  'no_shard_available_action_exception',
  'process_cluster_event_timeout_exception',
  'circuit_breaking_exception',
  'es_rejected_execution_exception',
  'illegal_state_exception',
]);

/** One verdict per bulk item (Filebeat's and the research's classification, §2.2). */
export function classifyItem(item: BulkItem, sink: string, eventId: string): Verdict {
  const { status, error } = item;
  if (status >= 200 && status < 300) return { kind: 'delivered' };
  const what = error
    ? `${error.type}: ${error.reason ?? ''}${error.caused_by ? ` (caused by ${error.caused_by.type}: ${error.caused_by.reason ?? ''})` : ''}`
    : 'no error detail';
  const reason = `elasticsearch sink "${sink}": item status ${status} for event ${eventId}: ${what}`;
  if (status === 409 && (error === undefined || error.type === 'version_conflict_engine_exception'))
    return { kind: 'duplicate' };
  if (status === 429 || status >= 500) return { kind: 'retry', reason };
  if (status === 401 || status === 403 || status === 404 || (error && SETUP_ERRORS.has(error.type))) {
    return {
      kind: 'retry',
      reason: `${reason} (a cluster or setup problem; the event waits until it is fixed)`,
    };
  }
  return { kind: 'rejected', reason };
}
