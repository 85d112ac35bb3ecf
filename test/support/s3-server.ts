import { createHash, createHmac } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { GetObjectCommand, ListObjectsCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
// s3rver's error type gives the right XML body and status; it has no types of its own.
// @ts-expect-error untyped CommonJS module
import S3Error from 's3rver/lib/models/error.js';
import { PROBE_PREFIX } from '../../src/sinks/s3/probe.ts';
import { type SinkFault, SinkFaultControl, sleep } from './sink-faults.ts';

export const S3_ACCESS_KEY = 'S3RVER';
export const S3_SECRET_KEY = 'S3RVER';

/**
 * A real S3-protocol server (s3rver: SigV4 signatures checked, XML errors, objects on disk), made
 * faithful to S3 conditional writes, which s3rver lacks: a PutObject with `If-None-Match: *` on an
 * existing key answers 412 PreconditionFailed; a concurrent conditional PUT of a key still being
 * written answers 409 ConditionalRequestConflict; any other If-None-Match value is 501 NotImplemented
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html). The check runs
 * inside s3rver's store call, i.e. after authentication, as on S3. s3rver also skips verifying SigV4
 * signatures (it only looks up the access key id), so a middleware here verifies them the way S3
 * does: a wrong secret gets 403 SignatureDoesNotMatch. Faults on object PUTs (`faults`, queued or at a
 * rate): a status with S3's XML error (503 SlowDown, 500 InternalError), a slow answer, an object
 * stored whose answer is lost (connection dropped). S3 has no partial writes: `partial` counts as a
 * lost answer.
 */
export class S3TestServer {
  readonly bucket: string;
  url = '';
  #server: S3rver | undefined;
  #dir = '';
  #down = false;
  readonly conditionalPuts = { created: 0, refused: 0 };
  /**
   * Behave like the S3-compatibles that ignore `If-None-Match: *` (Ceph RGW before ceph/ceph#63348,
   * chimera, s3d): the header is dropped and a second PUT answers 200 and overwrites.
   */
  ignoreIfNoneMatch = false;
  /** Injected faults (torture tests); none unless set. */
  readonly faults: SinkFaultControl;
  /** Unexpected errors inside s3rver (answered 500 InternalError), with the request. */
  readonly internalErrors: string[] = [];

  constructor(bucket = 'audit', seed: number | string = 1) {
    this.bucket = bucket;
    this.faults = new SinkFaultControl(`${seed}|s3`);
  }

  async start(port = 0): Promise<string> {
    this.#dir ||= await mkdtemp(join(tmpdir(), 's3rver-'));
    const server = new S3rver({
      port,
      address: '127.0.0.1',
      silent: true,
      directory: this.#dir,
      configureBuckets: [{ name: this.bucket }],
    });
    const store = server.store as typeof server.store & {
      getMetadata(bucket: string, key: string): Promise<unknown>;
      getResourcePath(bucket: string, key: string, resource: string): string;
    };
    const put = store.putObject.bind(store);
    const getMetadata = store.getMetadata.bind(store);
    const inFlight = new Set<string>();
    // An object is visible to GET, HEAD and LIST only once it is completely written, as on S3.
    const writing = new Set<string>();
    store.getMetadata = async (bucket, key) => {
      if (writing.has(`${bucket}/${key}`))
        throw Object.assign(new Error('being written'), { code: 'ENOENT' });
      return getMetadata(bucket, key);
    };
    store.putObject = async (object) => {
      if (this.#down) throw new S3Error('ServiceUnavailable', 'Reduce your request rate.');
      const req = object.content as IncomingMessage;
      const condition = this.ignoreIfNoneMatch ? undefined : req.headers?.['if-none-match'];
      const id = `${object.bucket}/${object.key}`;
      const refuse = async (error: Error): Promise<never> => {
        await drain(req); // so the client reads our answer instead of a reset
        throw error;
      };
      if (condition !== undefined && condition.trim() !== '*')
        return refuse(
          new S3Error(
            'NotImplemented',
            'A header you provided implies functionality that is not implemented',
            { Header: 'If-None-Match' },
          ),
        );
      if (condition !== undefined && inFlight.has(id)) {
        const conflict = new S3Error(
          'ConditionalRequestConflict',
          'A conflicting conditional operation is currently in progress against this resource. Please try again.',
        );
        conflict.status = 409;
        return refuse(conflict);
      }
      if (condition !== undefined) inFlight.add(id);
      try {
        // S3 stores an object only when its whole body arrived (and matches Content-MD5): an upload cut
        // off by a timeout, a reset or the server going away leaves nothing behind.
        const body = await readWhole(req);
        const md5 = req.headers['content-md5'];
        if (typeof md5 === 'string' && createHash('md5').update(body).digest('base64') !== md5) {
          throw new S3Error('BadDigest', 'The Content-MD5 you specified did not match what we received.');
        }
        if (condition !== undefined && (await store.existsObject(object.bucket, object.key))) {
          this.conditionalPuts.refused++;
          throw new S3Error(
            'PreconditionFailed',
            'At least one of the pre-conditions you specified did not hold',
            { Condition: 'If-None-Match' },
          );
        }
        writing.add(id);
        try {
          object.content = body;
          const result = await put(object);
          await untilWritten(store.getResourcePath(object.bucket, object.key, 'object'), body.length);
          if (condition !== undefined) this.conditionalPuts.created++;
          return result;
        } finally {
          writing.delete(id);
        }
      } finally {
        inFlight.delete(id);
      }
    };
    // Koa composes its middleware at listen time, so these run first: faults, then the signature check.
    const middleware = (server as unknown as { middleware: unknown[] }).middleware;
    middleware.unshift(verifySigV4);
    middleware.unshift((ctx: KoaContext, next: () => Promise<void>) =>
      this.#faulty(ctx, next, this.faults.next.bind(this.faults)),
    );
    // s3rver answers 500 InternalError for anything that is not an S3 error; keep the cause for tests.
    middleware.unshift(async (ctx: KoaContext, next: () => Promise<void>) => {
      try {
        await next();
      } catch (error) {
        if (!(error instanceof S3Error)) {
          this.internalErrors.push(`${ctx.method} ${ctx.url}: ${(error as Error).stack ?? String(error)}`);
        }
        throw error;
      }
    });
    const { port: bound } = await server.run();
    this.#server = server;
    this.url = `http://127.0.0.1:${bound}`;
    return this.url;
  }

  /** Applies the next fault to an object PUT (a path with a key); other requests pass untouched. */
  async #faulty(
    ctx: KoaContext,
    next: () => Promise<void>,
    draw: () => SinkFault | undefined,
  ): Promise<void> {
    const path = ctx.url.split('?')[0] ?? '';
    const isObjectPut = ctx.method === 'PUT' && path.split('/').filter((p) => p !== '').length >= 2;
    const fault = isObjectPut ? draw() : undefined;
    if (fault?.kind === 'status') {
      ctx.req.resume(); // drain the body so the client reads the answer instead of a reset
      await new Promise((r) => ctx.req.on('end', r));
      const [code, message] =
        fault.status === 503
          ? ['SlowDown', 'Please reduce your request rate.']
          : ['InternalError', 'We encountered an internal error. Please try again.'];
      ctx.status = fault.status;
      ctx.type = 'application/xml';
      if (fault.retryAfterSec !== undefined) ctx.set('Retry-After', String(fault.retryAfterSec));
      ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
      return;
    }
    if (fault?.kind === 'slow') await sleep(fault.delayMs);
    await next();
    if (fault?.kind === 'lost-answer' || fault?.kind === 'partial') {
      ctx.respond = false;
      ctx.req.socket.destroy();
    }
  }

  /** While down, PUTs answer 503 (after authentication). */
  setDown(down: boolean): void {
    this.#down = down;
  }

  async stop(): Promise<void> {
    await this.#server?.close();
    this.#server = undefined;
  }

  async remove(): Promise<void> {
    await this.stop();
    if (this.#dir) await rm(this.#dir, { recursive: true, force: true });
  }

  client(): S3Client {
    return new S3Client({
      region: 'us-east-1',
      endpoint: this.url,
      forcePathStyle: true,
      credentials: { accessKeyId: S3_ACCESS_KEY, secretAccessKey: S3_SECRET_KEY },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  /**
   * Every key under the prefix, over the S3 API. ListObjects v1 with markers: s3rver builds v2
   * continuation tokens with DES, which OpenSSL 3 no longer offers, so a v2 listing past 1,000 keys
   * fails inside the server.
   */
  async keys(prefix = ''): Promise<string[]> {
    const client = this.client();
    try {
      const keys: string[] = [];
      for (;;) {
        const page = await client.send(
          new ListObjectsCommand({ Bucket: this.bucket, Prefix: prefix, Marker: keys.at(-1) }),
        );
        const contents = page.Contents ?? [];
        for (const item of contents) keys.push(item.Key as string);
        if (!page.IsTruncated || contents.length === 0) return keys;
      }
    } finally {
      client.destroy();
    }
  }

  /** Every object under the prefix with its metadata and gunzipped lines, read back over the S3 API. */
  async objects(
    prefix = '',
  ): Promise<Array<{ key: string; lines: string[]; metadata: Record<string, string>; contentType: string }>> {
    const client = this.client();
    try {
      const out: Array<{
        key: string;
        lines: string[];
        metadata: Record<string, string>;
        contentType: string;
      }> = [];
      for (const key of await this.keys(prefix)) {
        // The sink's conditional-write canary is no archive object; a probe killed mid-way leaves one.
        if (key.includes(PROBE_PREFIX)) continue;
        const got = await client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
        const bytes = Buffer.from(
          await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
        );
        const text = gunzipSync(bytes).toString('utf8');
        out.push({
          key,
          lines: text.split('\n').slice(0, -1),
          metadata: got.Metadata ?? {},
          contentType: got.ContentType ?? '',
        });
      }
      return out;
    } finally {
      client.destroy();
    }
  }
}

interface KoaContext {
  req: IncomingMessage;
  respond: boolean;
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  status: number;
  body: unknown;
  type: string;
  set(name: string, value: string): void;
}

/** Verifies an AWS SigV4 Authorization header against the one known key pair; 403 like S3 otherwise. */
async function verifySigV4(ctx: KoaContext, next: () => Promise<void>): Promise<void> {
  const auth = ctx.headers.authorization;
  if (typeof auth === 'string' && auth.startsWith('AWS4-HMAC-SHA256 ')) {
    const parts = Object.fromEntries(
      auth
        .slice(17)
        .split(/,\s*/)
        .map((p) => p.split('=') as [string, string]),
    );
    const [accessKeyId, date, region, service] = String(parts.Credential).split('/');
    const signedHeaders = String(parts.SignedHeaders).split(';');
    const [rawPath = '/', rawQuery = ''] = ctx.url.split('?');
    const query = rawQuery
      .split('&')
      .filter((q) => q !== '')
      .map((q) => {
        const [k = '', v = ''] = q.split('=');
        return [rfc3986(decodeURIComponent(k)), rfc3986(decodeURIComponent(v.replace(/\+/g, ' ')))] as [
          string,
          string,
        ];
      })
      .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
      .map(([k, v]) => `${k}=${v}`)
      .join('&');
    const header = (name: string): string =>
      String(ctx.headers[name] ?? '')
        .trim()
        .replace(/\s+/g, ' ');
    const canonical = [
      ctx.method,
      rawPath,
      query,
      ...signedHeaders.map((h) => `${h}:${header(h)}`),
      '',
      signedHeaders.join(';'),
      header('x-amz-content-sha256') || 'UNSIGNED-PAYLOAD',
    ].join('\n');
    const scope = `${date}/${region}/${service}/aws4_request`;
    const toSign = [
      'AWS4-HMAC-SHA256',
      header('x-amz-date'),
      scope,
      createHash('sha256').update(canonical).digest('hex'),
    ].join('\n');
    if (accessKeyId === S3_ACCESS_KEY) {
      let key: Buffer = createHmac('sha256', `AWS4${S3_SECRET_KEY}`).update(String(date)).digest();
      for (const part of [region, service, 'aws4_request'])
        key = createHmac('sha256', key).update(String(part)).digest();
      const expected = createHmac('sha256', key).update(toSign).digest('hex');
      if (expected !== parts.Signature) {
        ctx.status = 403;
        ctx.type = 'application/xml';
        ctx.body =
          '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided. Check your key and signing method.</Message></Error>';
        return;
      }
    }
  }
  await next();
}

/**
 * The request body, whole; rejects if the client goes away before it ends. The client may already be
 * gone when this is called (it gave up during a slow fault): then 'close' has fired and will not again,
 * and waiting for it would hold the key's conditional-write slot forever (409 to every later upload).
 */
function readWhole(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const gone = (): void => reject(new Error('the client went away before the body ended'));
    if (req.destroyed && !req.readableEnded) {
      gone();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
    req.on('close', () => {
      if (!req.complete || !req.readableEnded) gone();
    });
  });
}

async function drain(req: IncomingMessage): Promise<void> {
  if (req.readableEnded || req.destroyed) return;
  req.resume();
  await new Promise((resolve) => {
    req.on('end', resolve);
    req.on('close', resolve);
  });
}

/** s3rver resolves a write before its file is complete; wait for the bytes to be there. */
async function untilWritten(path: string, size: number): Promise<void> {
  for (let i = 0; i < 2_500; i++) {
    if ((await stat(path).catch(() => undefined))?.size === size) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`s3rver did not finish writing ${path}`);
}

function rfc3986(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}
