import { readFile } from 'node:fs/promises';
import type { TruthEvent } from '../../src/simulator/index.ts';

export interface SinkRecord {
  readonly id: string;
  readonly line: string;
  /** The `raw` member's text, exactly as written. */
  readonly raw: string;
}

/** Reads NDJSON files a file sink wrote; a malformed line fails loudly (the sink must never write one). */
export async function readSinkFiles(paths: readonly string[]): Promise<SinkRecord[]> {
  const records: SinkRecord[] = [];
  for (const path of paths) {
    const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    });
    const lines = text.split('\n');
    if (lines.at(-1) !== '') throw new Error(`${path}: last line is not terminated`);
    for (const line of lines.slice(0, -1)) {
      const parsed = JSON.parse(line) as { id: string };
      // The envelope's own fields come first and cannot contain an unescaped `"raw":`.
      const at = line.indexOf(',"raw":');
      records.push({ id: parsed.id, line, raw: line.slice(at + 7, -1) });
    }
  }
  return records;
}

/**
 * Records from event lines read back from any sink (Loki entry lines, Elasticsearch sources with
 * `@timestamp` first, S3 object lines): the envelope's own fields come first, `raw` last.
 */
export function recordsFromLines(lines: readonly string[]): SinkRecord[] {
  return lines.map((line) => {
    const parsed = JSON.parse(line) as { id: string };
    const at = line.indexOf(',"raw":');
    return { id: parsed.id, line, raw: line.slice(at + 7, -1) };
  });
}

export interface Verdict {
  readonly expected: number;
  readonly delivered: number;
  readonly missing: string[];
  readonly duplicated: string[];
  readonly unexpected: string[];
  readonly altered: string[];
}

/** Compares what the sink holds with the simulator's ground truth: conservation, no duplicates, integrity. */
export function judge(truth: readonly TruthEvent[], records: readonly SinkRecord[]): Verdict {
  const expected = new Map(truth.map((e) => [e.id, e]));
  const counts = new Map<string, number>();
  const altered: string[] = [];
  for (const record of records) {
    counts.set(record.id, (counts.get(record.id) ?? 0) + 1);
    const original = expected.get(record.id);
    if (original && original.raw !== record.raw) altered.push(record.id);
  }
  return {
    expected: expected.size,
    delivered: counts.size,
    missing: [...expected.keys()].filter((id) => !counts.has(id)),
    duplicated: [...counts].filter(([, n]) => n > 1).map(([id]) => id),
    unexpected: [...counts.keys()].filter((id) => !expected.has(id)),
    altered,
  };
}

export function summary(v: Verdict): string {
  return `expected ${v.expected}, delivered ${v.delivered}, missing ${v.missing.length}, duplicated ${v.duplicated.length}, unexpected ${v.unexpected.length}, altered ${v.altered.length}`;
}
