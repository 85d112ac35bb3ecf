import { canonicalLabels } from './labels.ts';

/**
 * What a Loki 400 says about individual entries. Loki writes the valid entries of a push and answers
 * 400 naming the ones it refused (pkg/validation/validate.go messages from the distributor, and the
 * ingester's "entry with timestamp … ignored, reason: …" lines, at most `max_returned_errors`, default
 * 10, per stream). Entries are named by stream and timestamp (or line length for line_too_long).
 */
export interface Rejection {
  /** Canonical label set (see canonicalLabels). */
  readonly stream: string;
  readonly tsNanos?: string;
  readonly lineLength?: number;
  readonly reason: string;
}

const GO_TIME = String.raw`(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d{1,9})? [+-]\d{4}(?: [A-Za-z0-9+-]+)?)`;
const STREAM_QUOTED = String.raw`'(\{.*?\})'`;

const DISTRIBUTOR_TIME = new RegExp(
  String.raw`entry for stream ${STREAM_QUOTED} has timestamp too (old|new): ${GO_TIME}[^\n]*`,
  'g',
);
const LINE_TOO_LONG = new RegExp(
  String.raw`Max entry size '(\d+)' bytes exceeded for stream ${STREAM_QUOTED} while adding an entry with length '(\d+)' bytes`,
  'g',
);
const INGESTER_ENTRY = new RegExp(
  String.raw`entry with timestamp ${GO_TIME} ignored, reason: '([^\n]*)',`,
  'g',
);
const INGESTER_TRAILER = /total ignored: \d+ out of \d+ for stream: (\{[^\n]*\})/g;

export function parseRejections(body: string): Rejection[] {
  const found: Rejection[] = [];
  for (const m of body.matchAll(DISTRIBUTOR_TIME)) {
    const stream = canonicalLabels(m[1] as string);
    const ts = goTimeToNanos(m[3] as string);
    if (stream !== undefined && ts !== undefined) {
      found.push({
        stream,
        tsNanos: ts,
        reason: `${m[2] === 'old' ? 'greater_than_max_sample_age' : 'too_far_in_future'}: ${m[0]}`,
      });
    }
  }
  for (const m of body.matchAll(LINE_TOO_LONG)) {
    const stream = canonicalLabels(m[2] as string);
    if (stream !== undefined)
      found.push({ stream, lineLength: Number(m[3]), reason: `line_too_long: ${m[0]}` });
  }
  // Ingester blocks: entry lines, then a trailer naming their stream.
  let blockStart = 0;
  for (const trailer of body.matchAll(INGESTER_TRAILER)) {
    const stream = canonicalLabels(trailer[1] as string);
    const block = body.slice(blockStart, trailer.index);
    blockStart = trailer.index + trailer[0].length;
    if (stream === undefined) continue;
    for (const m of block.matchAll(INGESTER_ENTRY)) {
      const ts = goTimeToNanos(m[1] as string);
      const reason = m[2] as string;
      if (ts !== undefined) {
        found.push({
          stream,
          tsNanos: ts,
          reason: `${/too far behind/.test(reason) ? 'too_far_behind' : 'rejected'}: ${reason}`,
        });
      }
    }
  }
  return found;
}

/** Go's time.Time.String(): `2006-01-02 15:04:05.999999999 -0700 MST` → epoch nanoseconds. */
export function goTimeToNanos(text: string): string | undefined {
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))? ([+-])(\d{2})(\d{2})/.exec(text);
  if (!m) return undefined;
  const local = Date.parse(`${m[1]}T${m[2]}Z`);
  if (Number.isNaN(local)) return undefined;
  const offsetMs = (m[4] === '-' ? -1 : 1) * (Number(m[5]) * 60 + Number(m[6])) * 60_000;
  const fraction = BigInt((m[3] ?? '').padEnd(9, '0'));
  return (BigInt(local - offsetMs) * 1_000_000n + fraction).toString();
}

/** 400 answers that are about the whole request or the setup, not about particular entries. */
export function isConfigurationError(body: string): boolean {
  return /structured metadata, but this feature is disallowed|Content-Encoding .* not supported|error parsing labels|at least one label pair is required|missing_enforced_labels|missing required label|unsupported content type|max_label_names_per_series|has \d+ label names; limit|label name too long|label value too long|duplicate label name/i.test(
    body,
  );
}
