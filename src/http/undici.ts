import { errors } from 'undici';

/**
 * Response and error handling shared by the two undici clients: the providers' HttpClient and the
 * sinks' SinkHttp. Each keeps its own error types and wording (callers and tests tell them apart), so
 * the helpers here take the error to throw rather than choosing one.
 */

/**
 * Reads a response body into a string, refusing it once it grows past `maxBytes`, so one huge response
 * cannot exhaust memory. `tooLarge` builds the error thrown then.
 */
export async function readBounded(
  body: AsyncIterable<Buffer>,
  maxBytes: number,
  tooLarge: (maxBytes: number) => Error,
): Promise<string> {
  return (await readBoundedBytes(body, maxBytes, tooLarge)).toString('utf8');
}

/**
 * readBounded, keeping the exact bytes (a provider's invalid UTF-8 must not be replaced unseen, and a
 * protobuf answer does not survive UTF-8 decoding).
 */
export async function readBoundedBytes(
  body: AsyncIterable<Buffer>,
  maxBytes: number,
  tooLarge: (maxBytes: number) => Error,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > maxBytes) throw tooLarge(maxBytes);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

/** Lower-case header names; repeated headers joined with ", ". */
export function flattenHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (value !== undefined) flat[key.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return flat;
}

/** undici's own connect, headers and body deadlines (our AbortSignal deadline is checked separately). */
export function isTimeout(error: unknown): boolean {
  return (
    error instanceof errors.HeadersTimeoutError ||
    error instanceof errors.BodyTimeoutError ||
    error instanceof errors.ConnectTimeoutError
  );
}

/** A transport error for a message: its code (ECONNREFUSED, …), message and the cause's message. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
    return `${typeof code === 'string' ? `${code} ` : ''}${error.message}${cause}`;
  }
  return String(error);
}
