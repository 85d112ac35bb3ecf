import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderStatus, statusReport } from '../../src/cli/commands/status.ts';
import { RedisKeys } from '../../src/pipeline/keys.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { seedScope } from '../support/state.ts';

let redis: TestRedis;
const keys = new RedisKeys('{st}');

beforeAll(async () => {
  redis = await startTestRedis();
  const now = Date.now();
  await seedScope(redis.client, keys, 'stackit:project:a', {
    events: 3,
    watermarkMs: now - 90_000,
    sinks: ['archive', 'loki'],
  });
  await seedScope(redis.client, keys, 'stackit:project:b', {
    events: 2,
    watermarkMs: now - 30_000,
    sinks: ['archive'],
    failed: 'HTTP 503 from GET https://auditlog.api.stackit.cloud/v2/projects/b',
  });
  await redis.client.xadd(keys.deadLetter('loki'), '*', 'reason', 'too old', 'id', 'x');
  // A project the leader's discovery found under a configured organization.
  await redis.client.hset(
    keys.discoveredScopes(),
    'stackit:project:found',
    JSON.stringify({
      root: 'stackit:organization:o',
      ref: { kind: 'project', id: 'found' },
      firstSeenMs: now,
      lastSeenMs: now,
    }),
  );
});
afterAll(async () => {
  await redis.stop();
});

describe('status', () => {
  it('reports lag, outcome and failures per scope, and depth and dead letters per sink', async () => {
    const report = await statusReport(redis.client, keys, {
      scopes: ['stackit:project:a', 'stackit:project:b', 'stackit:project:never'],
      sinks: ['archive', 'loki'],
    });
    const byScope = Object.fromEntries(report.scopes.map((r) => [r.scope, r]));
    expect(byScope['stackit:project:a']).toMatchObject({
      origin: 'config',
      outcome: 'completed',
      failuresInARow: 0,
      lastError: null,
    });
    expect(byScope['stackit:project:a']?.lagSeconds).toBeGreaterThanOrEqual(90);
    expect(byScope['stackit:project:b']).toMatchObject({ outcome: 'failed', failuresInARow: 2 });
    expect(byScope['stackit:project:b']?.lastError).toContain('server_error: HTTP 503');
    expect(byScope['stackit:project:never']).toMatchObject({ lastPoll: null, lagSeconds: null });
    expect(byScope['stackit:project:found']).toMatchObject({ origin: 'discovered, active', lastPoll: null });
    expect(report.sinks).toEqual([
      { sink: 'archive', depth: 5, oldestAgeSeconds: expect.any(Number), deadLettered: 0 },
      { sink: 'loki', depth: 3, oldestAgeSeconds: expect.any(Number), deadLettered: 1 },
    ]);
  });

  it('finds scopes and sinks in Redis when no config is given, and renders aligned tables', async () => {
    const report = await statusReport(redis.client, keys, undefined);
    expect(report.scopes.map((r) => r.scope)).toEqual([
      'stackit:project:a',
      'stackit:project:b',
      'stackit:project:found',
    ]);
    expect(report.scopes.find((r) => r.scope === 'stackit:project:found')?.origin).toBe('discovered, active');
    expect(report.sinks.map((r) => r.sink)).toEqual(['archive', 'loki']);
    const text = renderStatus(report);
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^SCOPE\s+LAST POLL\s+LAG\s+FAILING\s+LAST ERROR$/);
    expect(lines.find((l) => l.startsWith('stackit:project:b'))).toMatch(/failed\s+\d+s\s+2\s+server_error/);
    expect(text).toMatch(/^loki\s+3\s+\S+\s+1$/m);
  });
});
