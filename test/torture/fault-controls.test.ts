import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it } from 'vitest';
import { EsTestServer } from '../support/es-server.ts';
import { FaultProxy } from '../support/fault-proxy.ts';
import { LokiTestServer } from '../support/loki-server.ts';
import { S3_ACCESS_KEY, S3_SECRET_KEY, S3TestServer } from '../support/s3-server.ts';

/** The fault controls the torture suite drives: each does what it says, in its store's protocol. */
const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of cleanup.splice(0).reverse()) await stop();
});

/** One timestamp base for the file: a re-sent push is identical to the first. */
const NOW_NS = BigInt(Date.now()) * 1_000_000n;

function lokiPush(url: string, lines: string[]): Promise<Response> {
  const now = NOW_NS;
  return fetch(`${url}/loki/api/v1/push`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-scope-orgid': 't' },
    body: JSON.stringify({
      streams: [{ stream: { job: 'x' }, values: lines.map((line, i) => [String(now + BigInt(i)), line]) }],
    }),
  });
}

function bulk(url: string, ids: string[]): Promise<Response> {
  const body = ids.map((id) => `{"create":{"_index":"audit","_id":"${id}"}}\n{"id":"${id}"}\n`).join('');
  return fetch(`${url}/_bulk`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
}

describe('sink test servers: injected faults', () => {
  it('Loki: a partial write stores half of each stream and answers 500; the re-send completes it without doubles', async () => {
    const loki = new LokiTestServer();
    await loki.start();
    cleanup.push(() => loki.stop());
    loki.faults.enqueue({ kind: 'partial' });
    const lines = ['a', 'b', 'c', 'd'];
    const first = await lokiPush(loki.url, lines);
    expect(first.status).toBe(500);
    expect(loki.entries().map((e) => e.line)).toEqual(['a', 'b']);
    // Loki drops identical entries: re-sending the whole push stores only what was missing.
    expect((await lokiPush(loki.url, lines)).status).toBe(204);
    expect(loki.entries().map((e) => e.line)).toEqual(['a', 'b', 'c', 'd']);
    loki.faults.enqueue({ kind: 'status', status: 429, retryAfterSec: 2 });
    const throttled = await lokiPush(loki.url, lines);
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get('retry-after')).toBe('2');
  });

  it('Loki: a lost answer stores the push and drops the connection', async () => {
    const loki = new LokiTestServer();
    await loki.start();
    cleanup.push(() => loki.stop());
    loki.faults.enqueue({ kind: 'lost-answer' });
    await expect(lokiPush(loki.url, ['x'])).rejects.toThrow();
    expect(loki.entries().map((e) => e.line)).toEqual(['x']);
    expect(loki.faults.injected.get('lost-answer')).toBe(1);
  });

  it('Elasticsearch: a partial bulk refuses every other item with an item-level 429 and stores the rest', async () => {
    const es = new EsTestServer();
    await es.start();
    cleanup.push(() => es.stop());
    es.faults.enqueue({ kind: 'partial' });
    const res = await bulk(es.url, ['a', 'b', 'c', 'd']);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { errors: boolean; items: Array<{ create: { status: number } }> };
    expect(body.errors).toBe(true);
    expect(body.items.map((i) => i.create.status)).toEqual([201, 429, 201, 429]);
    expect(
      es
        .docs()
        .map((d) => d.id)
        .sort(),
    ).toEqual(['a', 'c']);
    es.faults.enqueue({ kind: 'status', status: 502 });
    expect((await bulk(es.url, ['e'])).status).toBe(502);
    expect(es.docs()).toHaveLength(2);
  });

  it('S3: a lost answer stores the object and drops the connection; a status fault stores nothing', async () => {
    const s3 = new S3TestServer();
    await s3.start();
    cleanup.push(() => s3.remove());
    // The SDK's own retries would hide the faults: one attempt each.
    const client = new S3Client({
      region: 'us-east-1',
      endpoint: s3.url,
      forcePathStyle: true,
      credentials: { accessKeyId: S3_ACCESS_KEY, secretAccessKey: S3_SECRET_KEY },
      maxAttempts: 1,
    });
    cleanup.push(async () => client.destroy());
    s3.faults.enqueue({ kind: 'status', status: 503 }, { kind: 'lost-answer' });
    const put = (key: string) =>
      client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: 'hello' }));
    await expect(put('k1')).rejects.toMatchObject({ name: 'SlowDown' });
    await expect(put('k2')).rejects.toThrow();
    const got = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'k2' }));
    expect(await got.Body?.transformToString()).toBe('hello');
    await expect(client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'k1' }))).rejects.toThrow();
  });
});

describe('S3 test server: uploads are atomic, as on S3', () => {
  it('keeps nothing of an upload cut off mid-body, and a conditional retry of the key is not blocked', async () => {
    const s3 = new S3TestServer();
    await s3.start();
    cleanup.push(() => s3.remove());
    const { port } = new URL(s3.url);
    // Headers promise 100 bytes, 40 arrive, then the connection goes.
    await new Promise<void>((resolve) => {
      const req = request({
        host: '127.0.0.1',
        port,
        method: 'PUT',
        path: `/${s3.bucket}/cut`,
        headers: { 'content-length': '100', 'if-none-match': '*' },
      });
      req.on('error', () => resolve());
      req.write('x'.repeat(40), () => setTimeout(() => req.destroy(), 50));
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(await s3.objects()).toEqual([]);
    const client = s3.client();
    cleanup.push(async () => client.destroy());
    await client.send(
      new PutObjectCommand({ Bucket: s3.bucket, Key: 'cut', Body: 'whole', IfNoneMatch: '*' }),
    );
    const got = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'cut' }));
    expect(await got.Body?.transformToString()).toBe('whole');
  });
});

describe('S3 test server: a client that gives up during a slow answer', () => {
  it('does not leave its key blocked for the next conditional upload (409 forever)', async () => {
    const s3 = new S3TestServer();
    await s3.start();
    cleanup.push(() => s3.remove());
    const client = s3.client();
    cleanup.push(async () => client.destroy());
    s3.faults.enqueue({ kind: 'slow', delayMs: 400 });
    const put = (signal?: AbortSignal) =>
      client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'k', Body: 'body', IfNoneMatch: '*' }), {
        ...(signal ? { abortSignal: signal } : {}),
      });
    // The whole body is sent, then the client times out while the server is still "slow".
    await expect(put(AbortSignal.timeout(100))).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 600));
    // The abandoned upload either stored the object (412 now) or not (200 now); never a lasting 409.
    const outcome = await put().then(
      () => 'stored',
      (error: { name?: string }) => error.name,
    );
    expect(['stored', 'PreconditionFailed']).toContain(outcome);
  });
});

describe('fault proxy', () => {
  it('passes responses through, and truncates one on demand: headers promise the whole body, half arrives', async () => {
    const body = 'x'.repeat(10_000);
    const upstream = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-host': String(req.headers.host) }).end(body);
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise((r) => upstream.close(() => r())));
    const proxy = new FaultProxy(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`);
    await proxy.start();
    cleanup.push(() => proxy.stop());

    const whole = await fetch(`${proxy.url}/a`);
    expect(await whole.text()).toBe(body);
    // The Host header is the proxy's: links built from it point back at the proxy.
    expect(whole.headers.get('x-host')).toBe(new URL(proxy.url).host);

    proxy.truncateNext(1);
    const received = await new Promise<{ length: number; declared: number; error: boolean }>((resolve) => {
      request(`${proxy.url}/b`, (res) => {
        let length = 0;
        res.on('data', (chunk: Buffer) => {
          length += chunk.length;
        });
        res.on('error', () =>
          resolve({ length, declared: Number(res.headers['content-length']), error: true }),
        );
        res.on('end', () =>
          resolve({ length, declared: Number(res.headers['content-length']), error: false }),
        );
      }).end();
    });
    expect(received).toEqual({ length: 5_000, declared: 10_000, error: true });
    expect(proxy.stats.truncated).toBe(1);
  });
});

describe('S3 test server: listing', () => {
  it('lists every key past the 1,000 of one page (what the torture oracle reads back)', async () => {
    const s3 = new S3TestServer();
    await s3.start();
    cleanup.push(() => s3.remove());
    const client = s3.client();
    cleanup.push(async () => client.destroy());
    const written = Array.from({ length: 1_003 }, (_, i) => `p/${String(i).padStart(4, '0')}`);
    for (let i = 0; i < written.length; i += 50) {
      await Promise.all(
        written
          .slice(i, i + 50)
          .map((key) => client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: key }))),
      );
    }
    expect(await s3.keys('p/')).toEqual(written);
  }, 60_000);
});
