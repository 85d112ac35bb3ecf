import type { Redis } from 'ioredis';
import { Committer } from '../../src/pipeline/commit.ts';
import type { AuditEvent } from '../../src/pipeline/envelope.ts';
import type { RedisKeys } from '../../src/pipeline/keys.ts';
import { LeaseManager } from '../../src/pipeline/lease.ts';
import { ScopeStateStore } from '../../src/pipeline/scope-state.ts';

/** Puts real pipeline state into Redis the way the poller does: a committed page and a poll record. */
export async function seedScope(
  redis: Redis,
  keys: RedisKeys,
  scopeKey: string,
  options: { events: number; watermarkMs: number; sinks: string[]; failed?: string },
): Promise<void> {
  const lease = (await new LeaseManager(redis, keys).acquire(scopeKey, 5_000))!;
  const events: AuditEvent[] = Array.from({ length: options.events }, (_, i) => ({
    id: `${scopeKey}-${i}`,
    provider: 'stackit',
    scope: { kind: 'project', id: scopeKey },
    time: new Date(options.watermarkMs - 1_000).toISOString(),
    timeMs: options.watermarkMs - 1_000,
    raw: '{}',
  }));
  await new Committer(redis, keys).commit(
    lease,
    scopeKey,
    options.sinks,
    { events, checkpoint: { state: {}, watermarkMs: options.watermarkMs }, forgetSeenBeforeMs: 0 },
    Date.now(),
  );
  await lease.release();
  const now = Date.now();
  const store = new ScopeStateStore(redis, keys);
  await store.recordPoll(scopeKey, {
    outcome: 'completed',
    startedAtMs: now - 10,
    endedAtMs: now,
    added: options.events,
  });
  if (options.failed) {
    for (let i = 0; i < 2; i++) {
      await store.recordPoll(scopeKey, {
        outcome: 'failed',
        startedAtMs: now,
        endedAtMs: now,
        added: 0,
        error: { reason: 'server_error', message: options.failed },
      });
    }
  }
}
