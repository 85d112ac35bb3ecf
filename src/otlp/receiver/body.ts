import type { IncomingMessage } from 'node:http';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';

const gunzipAsync = promisify(gunzip);

/** A request body that cannot be read; `status` is the HTTP answer, the message names what. */
export class BodyError extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.name = 'BodyError';
    this.status = status;
  }
}

/**
 * Reads a request body of at most `maxBytes`, on the wire and after gzip: a small compressed body that
 * inflates to gigabytes (a gzip bomb) is cut off at the limit, never held in memory.
 */
export async function readBody(request: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    request.resume();
    throw new BodyError(400, `body of ${declared} bytes exceeds the limit of ${maxBytes} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      request.resume();
      throw new BodyError(400, `body exceeds the limit of ${maxBytes} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  const body = Buffer.concat(chunks);
  const encoding = String(request.headers['content-encoding'] ?? 'identity')
    .toLowerCase()
    .trim();
  if (encoding === 'identity' || encoding === '') return body;
  if (encoding !== 'gzip')
    throw new BodyError(415, `content-encoding "${encoding}" is not supported (gzip is)`);
  return await inflate(body, maxBytes);
}

export async function inflate(body: Buffer, maxBytes: number): Promise<Buffer> {
  try {
    return await gunzipAsync(body, { maxOutputLength: maxBytes });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new BodyError(400, `gzip body inflates beyond the limit of ${maxBytes} bytes`);
    }
    throw new BodyError(400, `gzip body cannot be decompressed (${(error as Error).message})`);
  }
}
