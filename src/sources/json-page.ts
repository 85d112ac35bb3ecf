/**
 * Reading one page of a provider's JSON list response, shared by the providers: parse, check the
 * envelope against the provider's schema, and keep each listed element's exact bytes next to its
 * parsed value (an audit record must reach the sink as the provider wrote it; see json-spans.ts).
 */
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

/** One element of the page's list. */
export interface RawElement {
  readonly index: number;
  readonly value: unknown;
  /** The element's JSON text exactly as it appeared in the response. */
  readonly raw: string;
}

/**
 * Parses `body` with `schema` and locates the elements of its top-level array `key` in the text.
 * Throws MalformedPageError when the body is not JSON, does not match, or its elements cannot be found.
 */
export function parseJsonPage<K extends string, T extends { readonly [P in K]: readonly unknown[] }>(
  body: string,
  schema: z.ZodType<T>,
  key: K,
): { readonly page: T; readonly elements: RawElement[] } {
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
  const spans = arrayElementSpans(body, key);
  if (!spans || spans.length !== list.length) {
    throw new MalformedPageError('invalid_response', `could not locate the ${key} in the response text`);
  }
  const elements = list.map((value, index) => {
    const [start, end] = spans[index] as [number, number];
    return { index, value, raw: body.slice(start, end) };
  });
  return { page: parsed.data, elements };
}

/**
 * Runs a provider's page parser for a poll: a malformed page fails the poll as a ProviderError naming
 * the request, and since nothing of it was committed the next poll reads it again.
 */
export function parsePageForPoll<P>(
  provider: string,
  parse: (body: string) => P,
  body: string,
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
