import type { Redis } from 'ioredis';
import type { Page } from '../sources/source.ts';
import { type AuditEvent, serializeEnvelope } from './envelope.ts';
import type { RedisKeys } from './keys.ts';
import type { Lease } from './lease.ts';
import { LuaScript } from './script.ts';

/**
 * The heart of the no-loss / no-duplicate guarantee, one atomic step per page, fenced by the lease:
 * each event id not yet in the scope's seen-set is added to it and appended to every sink's outbox,
 * then the checkpoint moves and the seen-set sheds ids no later poll can return. A crash before the
 * script leaves nothing half-done (the page is read again); after it, everything is durable together.
 *
 * KEYS: lease, checkpoint, seen, outbox…   ARGV: token, state, watermark, forgetBefore, seenAt, scope,
 * then (id, timeMs, line) per event. Returns a '0'/'1' flag per event (1 = new) and the longest outbox.
 */
const COMMIT = new LuaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('LEASE_LOST lease of this scope is no longer held by this poll')
end
local added = 0
local flags = {}
for i = 7, #ARGV, 3 do
  local id, t, line = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('ZADD', KEYS[3], 'NX', t, id) == 1 then
    added = added + 1
    flags[#flags + 1] = '1'
    for o = 4, #KEYS do
      redis.call('XADD', KEYS[o], '*', 'id', id, 'scope', ARGV[6], 't', t, 'seen', ARGV[5], 'line', line)
    end
  else
    flags[#flags + 1] = '0'
  end
end
redis.call('HSET', KEYS[2], 'state', ARGV[2], 'token', ARGV[1], 'updatedAt', ARGV[5])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], 'watermark', ARGV[3]) end
if added > 0 then redis.call('HINCRBY', KEYS[2], 'committed', added) end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[4])
local longest = 0
for o = 4, #KEYS do
  local length = redis.call('XLEN', KEYS[o])
  if length > longest then longest = length end
end
return {table.concat(flags), longest}
`);

export interface CommitResult {
  /** The page's events that were new, in page order; the rest were already committed. */
  readonly added: readonly AuditEvent[];
  readonly duplicates: number;
  /** Length of the fullest outbox this scope feeds, after the commit (backpressure). */
  readonly longestOutbox: number;
}

/** The lease was lost between acquiring it and committing: another poll may own the scope now. */
export class LeaseLostError extends Error {
  constructor(scopeKey: string) {
    super(`lease of ${scopeKey} was lost; the page was not committed and will be read again`);
    this.name = 'LeaseLostError';
  }
}

export class Committer {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;

  constructor(redis: Redis, keys: RedisKeys) {
    this.#redis = redis;
    this.#keys = keys;
  }

  async commit(
    lease: Lease,
    scopeKey: string,
    sinks: readonly string[],
    page: Page,
    seenAtMs: number,
  ): Promise<CommitResult> {
    const keys = [
      lease.key,
      this.#keys.checkpoint(scopeKey),
      this.#keys.seen(scopeKey),
      ...sinks.map((sink) => this.#keys.outbox(sink)),
    ];
    const args: Array<string | number> = [
      lease.token,
      JSON.stringify(page.checkpoint.state),
      page.checkpoint.watermarkMs ?? '',
      Math.floor(page.forgetSeenBeforeMs),
      seenAtMs,
      scopeKey,
    ];
    // Overlapping polls re-read mostly known events. Skipping those before serializing saves the work;
    // it is safe because an id in the seen-set stays there while it can still be returned, and the
    // script checks every remaining id again atomically.
    const known =
      page.events.length > 0
        ? await this.#redis.zmscore(keys[2] as string, ...page.events.map((e) => e.id))
        : [];
    const candidates = page.events.filter((_, i) => known[i] === null || known[i] === undefined);
    for (const event of candidates) args.push(event.id, event.timeMs, serializeEnvelope(event, seenAtMs));
    try {
      const [flags, longestOutbox] = (await COMMIT.run(this.#redis, keys, args)) as [string, number];
      const added = candidates.filter((_, i) => flags[i] === '1');
      return { added, duplicates: page.events.length - added.length, longestOutbox };
    } catch (error) {
      if (error instanceof Error && error.message.includes('LEASE_LOST')) throw new LeaseLostError(scopeKey);
      throw error;
    }
  }
}
