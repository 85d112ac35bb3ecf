import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/sources/cloudscale/canonical.ts';
import { arrayElementSpans } from '../../src/sources/json-spans.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import {
  type ProviderKind,
  pageOf,
  type ScriptedServer,
  scriptedPoller,
  startScriptedServer,
} from '../support/scripted-provider.ts';

/** Issue 9 §7: an entry nested 100,000 levels deep is a malformed item, not a stack overflow. */
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

const LEVELS = 100_000;
const deep = `${'['.repeat(LEVELS)}${']'.repeat(LEVELS)}`;

function entry(kind: ProviderKind, timeMs: number, id: string, payload: string): string {
  const time = new Date(timeMs).toISOString();
  return kind === 'stackit'
    ? `{"id":"${id}","eventTimeStamp":"${time}","eventName":"x","details":${payload}}`
    : `{"timestamp":"${time}","action":"${id}","message":${payload}}`;
}

describe('walking deep JSON', () => {
  it('measures depth without recursion, and canonical JSON refuses instead of overflowing', () => {
    const depths: number[] = [];
    const json = `{"items":[1,{"a":[{}]},${deep}]}`;
    expect(arrayElementSpans(json, 'items', depths)?.length).toBe(3);
    expect(depths).toEqual([0, 3, LEVELS]);
    expect(() => canonicalJson(JSON.parse(deep))).toThrow(TypeError);
    expect(() => canonicalJson(JSON.parse(deep))).toThrow(/nested more than/);
  });
});

describe.each<ProviderKind>(['stackit', 'cloudscale'])('%s: an entry nested 100,000 levels deep', (kind) => {
  it('fails the poll with a named error (not internal), then ships it with an anomaly after its strikes', async () => {
    const now = Date.now();
    const bad = entry(kind, now - 30_000, 'ev-deep', deep);
    const fine = entry(kind, now - 20_000, 'ev-fine', '"ok"');
    server.respond = (req, url) => pageOf(kind, req.url?.includes('cursor=end') ? [] : [bad, fine], url);
    const { poll, delivered } = scriptedPoller(kind, server, redis, () => now);

    for (const strike of [1, 2]) {
      const failed = await poll();
      expect(failed.outcome).toBe('failed');
      const error = failed.outcome === 'failed' ? (failed.error as Error & { reason?: string }) : undefined;
      expect(error?.reason).toBe('invalid_response');
      expect(error?.message).toMatch(
        kind === 'stackit'
          ? /^stackit project \S+, window .*, page 1: items\[0\]/
          : /^cloudscale provider "scripted", project alpha, page 1: results\[0\]/,
      );
      expect(error?.message).toContain(`nested ${LEVELS + 1} levels deep`);
      expect(error?.message).toContain(`strike ${strike} of 3`);
      expect(await delivered()).toEqual([]);
    }

    expect(await poll()).toMatchObject({ outcome: 'completed', added: 2 });
    const lines = await delivered();
    // (Not compared whole: a matcher walking 100,000 levels would overflow the test's own stack.)
    const anomalies = lines.map((l) => (l.anomalies as string[] | undefined)?.join('; '));
    expect(anomalies.filter((a) => a !== undefined)).toEqual([
      expect.stringMatching(/^too_deep: nested 100001 levels deep/),
    ]);
    expect(anomalies.filter((a) => a === undefined)).toHaveLength(1);
  });
});
