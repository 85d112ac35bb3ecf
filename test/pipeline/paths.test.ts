import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { renderStatus, statusReport } from '../../src/cli/commands/status.ts';
import type { AuditEvent } from '../../src/pipeline/envelope.ts';
import { RedisKeys } from '../../src/pipeline/keys.ts';
import { PATHS_MAX, PathRecorder } from '../../src/pipeline/paths.ts';
import { PushCommitter } from '../../src/pipeline/push-commit.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

let redis: TestRedis;
const keys = new RedisKeys('{paths}');
const SCOPE = 'stackit:project:p-1';
const NOW = Date.UTC(2026, 11, 2, 12, 0, 0);
const HOUR = 3_600_000;

beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis.stop();
});
beforeEach(async () => {
  await redis.client.flushall();
});

const event = (id: string, timeMs: number): AuditEvent => ({
  id,
  provider: 'stackit',
  scope: { kind: 'project', id: 'p-1' },
  time: new Date(timeMs).toISOString(),
  timeMs,
  raw: `{"id":"${id}"}`,
});

async function push(events: AuditEvent[]): Promise<void> {
  await new PushCommitter(redis.client, keys).commit(SCOPE, ['archive'], events, NOW, {
    maxOutbox: 1_000,
    forgetSeenBeforeMs: NOW - 7 * 24 * HOUR,
    pathsKeepAfterMs: NOW - 48 * HOUR,
    pathsMax: PATHS_MAX,
  });
}

describe('the poll → push migration view', () => {
  it('counts events seen by both paths and by one only, over the time both have covered', async () => {
    const recorder = new PathRecorder(redis.client, keys);
    // Polling started 3 h ago, pushing 2 h ago: the hour before the push started is not compared.
    await recorder.polled(
      SCOPE,
      [event('early', NOW - 3 * HOUR), event('same', NOW - HOUR), event('v2-id', NOW - HOUR)],
      NOW,
    );
    await push([event('late', NOW - 2 * HOUR), event('same', NOW - HOUR), event('router-id', NOW - HOUR)]);
    // Too recent to judge: the poller may not have read it yet.
    await push([event('fresh', NOW - 60_000)]);
    const comparison = await recorder.compare(SCOPE, NOW);
    expect(comparison).toMatchObject({
      fromMs: NOW - 2 * HOUR,
      polled: 2,
      pushed: 3,
      both: 1,
      pollOnly: 1,
      pushOnly: 2,
      pollOnlySample: ['v2-id'],
    });
    expect([...comparison.pushOnlySample].sort()).toEqual(['late', 'router-id']);
  });

  it('appears in status for every scope the push path delivered to', async () => {
    await push([event('a', NOW - HOUR)]);
    await new PathRecorder(redis.client, keys).polled(SCOPE, [event('a', NOW - HOUR)], NOW);
    const report = await statusReport(redis.client, keys, undefined, NOW);
    expect(report.paths.map((p) => [p.scope, p.both, p.pollOnly, p.pushOnly])).toEqual([[SCOPE, 1, 0, 0]]);
    expect(renderStatus(report)).toMatch(
      /POLL → PUSH MIGRATION[\s\S]*stackit:project:p-1\s+1\s+1\s+1\s+0\s+0/,
    );
  });

  it('keeps each path’s ids bounded', async () => {
    const recorder = new PathRecorder(redis.client, keys);
    await recorder.polled(SCOPE, [event('old', NOW - 49 * HOUR), event('new', NOW - HOUR)], NOW);
    expect(await redis.client.zrange(keys.polledIds(SCOPE), '0', '-1')).toEqual(['new']);
  });
});
