/**
 * Reading one page of a provider's JSON list response, shared by the providers: parse, check the
 * envelope against the provider's schema, and keep each listed element's exact bytes next to its
 * parsed value (an audit record must reach the sink as the provider wrote it; see json-spans.ts).
 */
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import type { z } from 'zod';
import { ProviderError } from './errors.ts';
import { arrayElementSpans } from './json-spans.ts';

/** A page that cannot be read as a whole; the poll fails and is retried from its last commit. */
export class MalformedPageError extends Error {
  readonly kind: 'invalid_json' | 'invalid_response';

  constructor(kind: 'invalid_json' | 'invalid_response', message: string) {
    super(message);
    this.name = 'MalformedPageError';
    this.kind = kind;
  }
}

/**
 * Nesting deeper than this is refused wherever the shipper walks JSON with recursive code (canonical
 * JSON, mappers): 100,000 levels overflow the stack. No real audit entry comes near it; one that does
 * is treated like any other malformed item (strikes, then shipped with an anomaly).
 */
export const MAX_JSON_DEPTH = 128;

/** One element of the page's list. */
export interface RawElement {
  readonly index: number;
  readonly value: unknown;
  /**
   * The element's JSON text exactly as it appeared in the response; when its bytes are not valid
   * UTF-8, their decoding with U+FFFD in place of each invalid sequence (and `bytes` holds them).
   */
  readonly raw: string;
  /** Only when the element's bytes are not valid UTF-8: exactly those bytes. */
  readonly bytes?: Buffer;
  /** How deeply the element nests (a scalar is 0); more than MAX_JSON_DEPTH makes it malformed. */
  readonly depth: number;
}

/**
 * Parses `body` with `schema` and locates the elements of its top-level array `key` in the text.
 * Throws MalformedPageError when the body is not JSON, does not match, or its elements cannot be found.
 *
 * Given the response's bytes, they are checked before anything decodes them: a body that is not valid
 * UTF-8 is parsed from its lossy decoding (U+FFFD), but each element's exact bytes are cut out of the
 * bytes themselves and kept where they are not valid UTF-8, so nothing the provider sent is altered
 * unseen. The cut works on a latin1 view of the bytes (one character per byte, so indices are byte
 * offsets): JSON's structure is ASCII, and bytes of 0x80 and above only occur inside strings.
 */
export function parseJsonPage<K extends string, T extends { readonly [P in K]: readonly unknown[] }>(
  input: string | Buffer,
  schema: z.ZodType<T>,
  key: K,
): { readonly page: T; readonly elements: RawElement[] } {
  const bytes = typeof input === 'string' || isUtf8(input) ? undefined : input;
  const body = typeof input === 'string' ? input : input.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new MalformedPageError('invalid_json', `response is not JSON (${detail}; ${body.length} bytes)`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`,
    );
    throw new MalformedPageError('invalid_response', `unexpected response shape: ${problems.join('; ')}`);
  }
  const list = parsed.data[key];
  const depths: number[] = [];
  const spans = arrayElementSpans(bytes === undefined ? body : bytes.toString('latin1'), key, depths);
  if (!spans || spans.length !== list.length || depths.length !== list.length) {
    throw new MalformedPageError('invalid_response', `could not locate the ${key} in the response text`);
  }
  const elements = list.map((value, index): RawElement => {
    const [start, end] = spans[index] as [number, number];
    const depth = depths[index] as number;
    if (bytes === undefined) return { index, value, raw: body.slice(start, end), depth };
    const exact = Buffer.from(bytes.subarray(start, end));
    return isUtf8(exact)
      ? { index, value, raw: exact.toString('utf8'), depth }
      : { index, value, raw: exact.toString('utf8'), bytes: exact, depth };
  });
  return { page: parsed.data, elements };
}

/**
 * What is wrong with the element as a whole, whatever the provider: nesting too deep to walk. The
 * sources fail a poll on it (naming provider, scope and page) and, if the provider keeps sending it,
 * ship it with this as an anomaly.
 */
export function structureDefect(element: RawElement): string | undefined {
  return element.depth > MAX_JSON_DEPTH
    ? `nested ${element.depth} levels deep, more than the ${MAX_JSON_DEPTH} the shipper walks`
    : undefined;
}

/**
 * The envelope's `raw`, `rawBytes` and `anomalies` of an element (`anomalies` as the mapper collected
 * them). Bytes that are not valid UTF-8 are kept exactly and flagged with an `invalid_utf8` anomaly,
 * because `raw` then shows U+FFFD where the provider sent something else.
 */
export function rawAndAnomalies(
  element: RawElement,
  anomalies: readonly string[],
): { readonly raw: string; readonly rawBytes?: Buffer; readonly anomalies?: readonly string[] } {
  const all = [...anomalies];
  const structure = structureDefect(element);
  if (structure !== undefined) all.push(`too_deep: ${structure}`);
  if (element.bytes !== undefined) {
    all.push(
      'invalid_utf8: the provider sent bytes that are not valid UTF-8; rawBase64 holds them exactly, raw shows U+FFFD in place of each invalid sequence',
    );
  }
  return {
    ...(all.length > 0 ? { anomalies: all } : {}),
    raw: element.raw,
    ...(element.bytes === undefined ? {} : { rawBytes: element.bytes }),
  };
}

/** SHA-256 of the element's exact bytes (a stable fallback id and strike key). */
export function elementSha256(element: RawElement): string {
  return createHash('sha256')
    .update(element.bytes ?? Buffer.from(element.raw, 'utf8'))
    .digest('hex');
}

/**
 * Runs a provider's page parser for a poll: a malformed page fails the poll as a ProviderError naming
 * the request, and since nothing of it was committed the next poll reads it again.
 */
export function parsePageForPoll<P, B extends string | Buffer>(
  provider: string,
  parse: (body: B) => P,
  body: B,
  where: string,
): P {
  try {
    return parse(body);
  } catch (error) {
    if (!(error instanceof MalformedPageError)) throw error;
    throw new ProviderError({
      provider,
      reason: error.kind,
      retryable: false,
      message: `${where}: ${error.message}; nothing of this page was committed, the next poll reads it again`,
    });
  }
}
