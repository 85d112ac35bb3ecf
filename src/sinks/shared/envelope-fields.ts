import { z } from 'zod';

/**
 * The normalized envelope fields of an outbox line, for sinks that route or label by them (Loki labels
 * and metadata, Elasticsearch's @timestamp). Only the part before `raw` is parsed: the envelope's own
 * fields come first and `,"raw":` cannot occur unescaped inside them, so the provider's JSON, which may
 * be large, is never parsed here.
 */
const envelopeSchema = z.object({
  id: z.string(),
  provider: z.string(),
  scope: z.object({ kind: z.string(), id: z.string() }),
  time: z.string(),
  receivedAt: z.string().optional(),
  seenAt: z.string().optional(),
  action: z.string().optional(),
  actor: z
    .object({ id: z.string().optional(), email: z.string().optional(), type: z.string().optional() })
    .optional(),
  sourceIp: z.string().optional(),
  resource: z
    .object({ id: z.string().optional(), name: z.string().optional(), type: z.string().optional() })
    .optional(),
});

export type EnvelopeFields = z.output<typeof envelopeSchema>;

/** Parses an outbox line's envelope fields, or says what is wrong with it. */
export function envelopeFields(line: string): EnvelopeFields | string {
  const at = line.indexOf(',"raw":');
  const head = at === -1 ? line : `${line.slice(0, at)}}`;
  let json: unknown;
  try {
    json = JSON.parse(head);
  } catch {
    return 'the event line is not JSON';
  }
  const parsed = envelopeSchema.safeParse(json);
  if (!parsed.success)
    return `the event line lacks envelope fields (${parsed.error.issues[0]?.message ?? 'invalid'})`;
  return parsed.data;
}

const RFC3339_UTC = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$/;

/**
 * Event time as nanoseconds since the epoch (a decimal string, as Loki wants it), keeping the
 * provider's sub-millisecond digits, which a Date would drop. Undefined unless it is RFC 3339 UTC.
 */
export function epochNanos(time: string): string | undefined {
  const m = RFC3339_UTC.exec(time);
  if (!m) return undefined;
  const seconds = Date.parse(`${m[1]}Z`);
  if (Number.isNaN(seconds)) return undefined;
  const fraction = (m[2] ?? '').padEnd(9, '0');
  return (BigInt(seconds) * 1_000_000n + BigInt(fraction)).toString();
}

/** A dotted path into the envelope (`actor.email`), as a string or undefined when absent or empty. */
export function fieldAt(fields: EnvelopeFields, path: string): string | undefined {
  let value: unknown = fields;
  for (const part of path.split('.')) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return typeof value === 'string' && value !== '' ? value : undefined;
}
