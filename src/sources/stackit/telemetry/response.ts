import type { z } from 'zod';
import { ProviderError } from '../../errors.ts';

/**
 * A response body validated against its schema, or a ProviderError naming the API call and what did
 * not fit (field paths only: a body may echo credentials, so no values are quoted).
 */
export function parseResponse<S extends z.ZodType>(schema: S, body: string, what: string): z.output<S> {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw invalid(what, 'the response is not JSON');
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const fields = parsed.error.issues
      .slice(0, 3)
      .map(
        (issue) =>
          `${issue.path.join('.') || 'body'}: ${issue.code === 'invalid_type' ? 'missing or wrong type' : issue.code}`,
      )
      .join('; ');
    throw invalid(what, `unexpected response (${fields})`);
  }
  return parsed.data;
}

function invalid(what: string, detail: string): ProviderError {
  return new ProviderError({
    provider: 'stackit',
    reason: 'invalid_response',
    retryable: false,
    message: `${what}: ${detail}`,
  });
}
