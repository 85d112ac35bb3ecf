import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { resetState } from '../../src/cli/commands/state.ts';
import { RedisKeys } from '../../src/pipeline/keys.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';
import { seedScope } from '../support/state.ts';

let redis: TestRedis;
const keys = new RedisKeys('{reset}');
const SCOPE = 'stackit:project:r';

beforeAll(async () => {
  redis = await startTestRedis();
  vi.stubEnv('REDIS_URL', redis.url);
  vi.stubEnv('REDIS_PREFIX', '{reset}');
});
afterAll(async () => {
  vi.unstubAllEnvs();
  await redis.stop();
});
beforeEach(async () => {
  await seedScope(redis.client, keys, SCOPE, { events: 2, watermarkMs: Date.now(), sinks: ['archive'] });
});

const checkpoint = () => redis.client.exists(keys.checkpoint(SCOPE));

describe('state reset asks first', () => {
  it('refuses without --yes where there is no terminal to ask on', async () => {
    await expect(resetState('r', {}, () => undefined, undefined)).rejects.toThrow(
      `state reset ${SCOPE} needs confirmation: pass --yes`,
    );
    expect(await checkpoint()).toBe(1);
  });

  it('keeps the checkpoint when the operator says no, and names what the question is about', async () => {
    const questions: string[] = [];
    const out: string[] = [];
    await resetState(
      'r',
      {},
      (s) => out.push(s),
      async (q) => {
        questions.push(q);
        return false;
      },
    );
    expect(questions).toEqual([expect.stringMatching(/^Reset stackit:project:r\? .*\[y\/N\] $/)]);
    expect(out.join('')).toContain('not reset');
    expect(await checkpoint()).toBe(1);
  });

  it('resets on yes, and with --yes without asking', async () => {
    await resetState(
      'r',
      {},
      () => undefined,
      async () => true,
    );
    expect(await checkpoint()).toBe(0);
    await seedScope(redis.client, keys, SCOPE, { events: 1, watermarkMs: Date.now(), sinks: ['archive'] });
    const asked = vi.fn(async () => false);
    await resetState('r', { yes: true }, () => undefined, asked);
    expect(asked).not.toHaveBeenCalled();
    expect(await checkpoint()).toBe(0);
  });
});
