/**
 * The torture oracle: what every sink holds, read back through its own protocol, judged against the
 * simulators' ground truth.
 *
 * - STACKIT events are judged by id: each truth event must be in the sink (conservation), its `raw`
 *   byte-identical to the provider's item (integrity), and at an idempotent sink exactly once.
 * - cloudscale entries have no ids, so they are judged as multisets of raw entry text (twins included):
 *   a missing copy is a loss, an extra copy a duplicate, a text the truth does not know an alteration.
 * - Every record's `rawSha256` must be the SHA-256 of its `raw` (the envelope's own integrity check).
 * - Duplicates are counted the way each store identifies an event: Elasticsearch by `_id` and by event
 *   id across indices, S3 by event id across objects, Loki by event id across entries (Loki itself drops
 *   identical entries, so a second one is a different entry for one event), a file by event id within
 *   the file. Across the replicas' files, an event written by a replica that died before acknowledging
 *   and then by the one that took its entries over is at-least-once by design: counted, not failed.
 */
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import type { CloudscaleTruthEntry, TruthEvent } from '../../src/simulator/index.ts';
import { judgeByRaw } from '../support/cloudscale.ts';
import { readSinkFiles } from '../support/oracle.ts';

export interface StoredRecord {
  readonly id: string;
  readonly provider: string;
  readonly raw: string;
  readonly rawSha256: string | undefined;
  /** Where the sink keeps it: a file, an ES index/_id, an S3 key, a Loki stream. */
  readonly where: string;
  /** Elasticsearch's `_id`. */
  readonly docId?: string;
}

export interface SinkVerdict {
  readonly sink: string;
  readonly records: number;
  readonly expected: number;
  /** Truth events (STACKIT ids, cloudscale raw texts) the sink lacks. */
  readonly missing: string[];
  /** Events held more than once where that is a failure. */
  readonly duplicated: string[];
  /** Events held more than once where at-least-once is the promise (across replicas' files). */
  readonly redelivered: string[];
  /** STACKIT ids whose raw differs from the provider's, and raw texts the truth does not know. */
  readonly altered: string[];
  /** Records whose `rawSha256` is not the SHA-256 of their `raw`. */
  readonly checksumMismatches: string[];
  /** Records of events the truth does not have at all (foreign ids). */
  readonly unexpected: string[];
}

export interface Truths {
  readonly stackit: readonly TruthEvent[];
  readonly cloudscale: readonly CloudscaleTruthEntry[];
}

/** Parses an envelope line as every sink stores it: the envelope's fields first, `raw` last, verbatim. */
export function recordOfLine(line: string, where: string, docId?: string): StoredRecord {
  const parsed = JSON.parse(line) as { id: string; provider: string; rawSha256?: string };
  const at = line.indexOf(',"raw":');
  if (at < 0) throw new Error(`${where}: a stored line without "raw": ${line.slice(0, 200)}`);
  return {
    id: parsed.id,
    provider: parsed.provider,
    raw: line.slice(at + 7, -1),
    rawSha256: parsed.rawSha256,
    where,
    ...(docId === undefined ? {} : { docId }),
  };
}

export async function fileRecords(paths: readonly string[]): Promise<StoredRecord[]> {
  const out: StoredRecord[] = [];
  for (const path of paths) {
    for (const r of await readSinkFiles([path])) out.push(recordOfLine(r.line, basename(path)));
  }
  return out;
}

export function judgeSink(
  sink: string,
  truths: Truths,
  records: readonly StoredRecord[],
  duplicatesBy: 'event' | 'event-within-where',
): SinkVerdict {
  const stackit = records.filter((r) => r.provider === 'stackit');
  const cloudscale = records.filter((r) => r.provider === 'cloudscale');
  const foreign = records.filter((r) => r.provider !== 'stackit' && r.provider !== 'cloudscale');

  const expected = new Map(truths.stackit.map((e) => [e.id, e]));
  const missing: string[] = [];
  const altered: string[] = [];
  const unexpected = foreign.map((r) => `${r.where}: ${r.id}`);
  const have = new Set<string>();
  for (const r of stackit) {
    have.add(r.id);
    const original = expected.get(r.id);
    if (!original) unexpected.push(`${r.where}: ${r.id}`);
    else if (original.raw !== r.raw) altered.push(`${r.where}: ${r.id}`);
  }
  for (const id of expected.keys()) if (!have.has(id)) missing.push(`stackit ${id}`);

  // cloudscale: multisets of raw text. Duplicates are judged below by event id, so twins (identical
  // entries with their own ids) are told apart from redeliveries.
  const cs = judgeByRaw(truths.cloudscale, cloudscale);
  for (const raw of cs.missing) missing.push(`cloudscale ${raw.slice(0, 120)}`);
  for (const raw of cs.unexpected) altered.push(`cloudscale raw not in the truth: ${raw.slice(0, 120)}`);

  const checksumMismatches = records
    .filter((r) => r.rawSha256 !== createHash('sha256').update(r.raw, 'utf8').digest('hex'))
    .map((r) => `${r.where}: ${r.id}`);

  const duplicated: string[] = [];
  const redelivered: string[] = [];
  const byEvent = new Map<string, StoredRecord[]>();
  for (const r of records) {
    const list = byEvent.get(r.id);
    if (list) list.push(r);
    else byEvent.set(r.id, [r]);
  }
  for (const [id, list] of byEvent) {
    if (list.length < 2) continue;
    const places = list.map((r) => r.where);
    if (duplicatesBy === 'event-within-where' && new Set(places).size === places.length) {
      redelivered.push(`${id} in ${places.join(', ')}`);
    } else {
      duplicated.push(`${id} in ${places.join(', ')}`);
    }
  }
  // cloudscale: an entry stored under more ids than the provider has copies of it (same-id repeats
  // are counted above): the shipper named one entry twice, and no idempotent store can absorb that.
  const truthCopies = new Map<string, number>();
  for (const e of truths.cloudscale) truthCopies.set(e.raw, (truthCopies.get(e.raw) ?? 0) + 1);
  const idsOfRaw = new Map<string, Set<string>>();
  for (const r of cloudscale) {
    const ids = idsOfRaw.get(r.raw) ?? new Set<string>();
    ids.add(r.id);
    idsOfRaw.set(r.raw, ids);
  }
  for (const [raw, ids] of idsOfRaw) {
    const allowed = truthCopies.get(raw);
    if (allowed !== undefined && ids.size > allowed) {
      duplicated.push(
        `cloudscale entry under ${ids.size} ids, the provider has ${allowed}: ${raw.slice(0, 120)}`,
      );
    }
  }
  // Elasticsearch: one document per _id, and the _id is the event's own.
  for (const r of records) {
    if (r.docId !== undefined && r.docId !== r.id && r.id.length <= 512) {
      altered.push(`${r.where}: _id ${r.docId} holds event ${r.id}`);
    }
  }
  return {
    sink,
    records: records.length,
    expected: truths.stackit.length + truths.cloudscale.length,
    missing,
    duplicated,
    redelivered,
    altered,
    checksumMismatches,
    unexpected,
  };
}

export function verdictLine(v: SinkVerdict): string {
  return (
    `${v.sink}: ${v.records} records for ${v.expected} events; missing ${v.missing.length}, ` +
    `duplicated ${v.duplicated.length}, redelivered ${v.redelivered.length}, altered ${v.altered.length}, ` +
    `checksum ${v.checksumMismatches.length}, unexpected ${v.unexpected.length}`
  );
}
