import { createHash } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { serializeEnvelope } from '../../src/pipeline/envelope.ts';
import { parseJsonPage } from '../../src/sources/json-page.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import {
  entryOf,
  type ProviderKind,
  pageOf,
  type ScriptedServer,
  scriptedPoller,
  startScriptedServer,
} from '../support/scripted-provider.ts';

/** Issue 9 §5: invalid UTF-8 from a provider is kept exactly, flagged, and hashed as sent. */
let redis: TestRedis;
let server: ScriptedServer;

beforeAll(async () => {
  redis = await startTestRedis();
  server = await startScriptedServer();
});
afterAll(async () => {
  await server.close();
  await redis.stop();
});
beforeEach(async () => {
  await redis.client.flushall();
});

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
/** "café", then a lone continuation byte, a truncated 3-byte sequence and an overlong encoding of '/'. */
const BROKEN = Buffer.concat([Buffer.from('café '), Buffer.from([0x80, 0x20, 0xe2, 0x82, 0x20, 0xc0, 0xaf])]);

describe('parseJsonPage on bytes', () => {
  const schema = z.object({ items: z.array(z.unknown()) });

  it('cuts each element out of the bytes, keeping those that are not valid UTF-8 exactly', () => {
    const good = Buffer.from('{"a":"é ✓ 😀"}');
    const bad = Buffer.concat([Buffer.from('{"a":"'), BROKEN, Buffer.from('"}')]);
    const body = Buffer.concat([
      Buffer.from('{"items":[ '),
      good,
      Buffer.from(' ,\n'),
      bad,
      Buffer.from(',1]}'),
    ]);
    const { elements } = parseJsonPage(body, schema, 'items');
    expect(elements.map((e) => e.raw)).toEqual([good.toString('utf8'), bad.toString('utf8'), '1']);
    expect(elements[0]?.bytes).toBeUndefined();
    expect(elements[1]?.bytes).toEqual(bad);
    expect(elements[1]?.raw).toContain('\uFFFD');
    expect(elements[2]?.bytes).toBeUndefined();
  });
});

describe.each<ProviderKind>(['stackit', 'cloudscale'])('%s: an entry with invalid UTF-8', (kind) => {
  it('is delivered with its exact bytes in rawBase64, an invalid_utf8 anomaly and rawSha256 over the bytes', async () => {
    const now = Date.now();
    const broken = entryOf(kind, now - 30_000, BROKEN, 'ev-broken');
    const fine = entryOf(kind, now - 20_000, 'all good ✓', 'ev-fine');
    // cloudscale's poll_more then answers with nothing new; STACKIT's window is read again.
    server.respond = (req, url) => pageOf(kind, req.url?.includes('cursor=end') ? [] : [broken, fine], url);
    const { poll, delivered } = scriptedPoller(kind, server, redis, () => now);

    expect(await poll()).toMatchObject({ outcome: 'completed', added: 2 });
    const [first, second] = await delivered();
    expect(Buffer.from(String(first?.rawBase64), 'base64')).toEqual(broken);
    expect(first?.rawSha256).toBe(sha256(broken));
    expect(first?.anomalies).toEqual([expect.stringMatching(/^invalid_utf8: /)]);
    expect(JSON.stringify(first?.raw)).toContain('\uFFFD');
    // A valid entry beside it is untouched: no rawBase64, hash over its text.
    expect(second?.rawBase64).toBeUndefined();
    expect(second?.anomalies).toBeUndefined();
    expect(second?.rawSha256).toBe(sha256(fine));

    // Read again: the same bytes are a duplicate, not a conflict with their replacement characters.
    if (kind === 'stackit') {
      expect(await poll()).toMatchObject({ outcome: 'completed', added: 0, duplicates: 2 });
    }
  });
});

describe('serializeEnvelope', () => {
  it('puts rawBase64 before raw, so raw stays the last member', () => {
    const rawBytes = Buffer.concat([Buffer.from('{"m":"'), Buffer.from([0xff]), Buffer.from('"}')]);
    const line = serializeEnvelope(
      {
        id: 'x',
        provider: 'stackit',
        scope: { kind: 'project', id: 'p' },
        time: '2026-01-01T00:00:00Z',
        timeMs: 0,
        raw: rawBytes.toString('utf8'),
        rawBytes,
      },
      0,
    );
    expect(line.endsWith(`,"raw":${rawBytes.toString('utf8')}}`)).toBe(true);
    expect(JSON.parse(line)).toMatchObject({
      rawSha256: sha256(rawBytes),
      rawBase64: rawBytes.toString('base64'),
    });
  });
});
