import { awaitReplica, type RedisClient } from '../redis/client.ts';
import type { Page } from '../sources/source.ts';
import { type AuditEvent, rawSha256, serializeEnvelope } from './envelope.ts';
import type { RedisKeys } from './keys.ts';
import type { Lease } from './lease.ts';
import { LuaScript } from './script.ts';

/**
 * The parts of the commit every committing script shares (the page commit here, the push commit below),
 * so both paths keep exactly the same dedupe, conflict and trim rules. They rely on one layout:
 * KEYS[3] seen, KEYS[4] digests, KEYS[5…] outboxes; ARGV[4] forgetBefore, ARGV[5] seenAt, ARGV[6] scope,
 * events from ARGV[7] in strides of 7. ADD_EVENTS leaves `kinds` and `added`; LONGEST leaves `longest`.
 */
const ADD_EVENTS = `
local FIRST, STRIDE = 7, 7
-- Digests of ids this page adds, so later events of the same page are judged against them too.
local pending = {}
local function digestOf(id)
  local d = pending[id]
  if d ~= nil then return d end
  if not redis.call('ZSCORE', KEYS[3], id) then return nil end
  return redis.call('HGET', KEYS[4], id) or ''
end
-- Pass 1: judge every event before writing anything (a script that fails half-way keeps its writes).
local kinds = {}
for i = FIRST, #ARGV, STRIDE do
  local id, digest, variantId = ARGV[i], ARGV[i + 2], ARGV[i + 4]
  local first = digestOf(id)
  local kind = '0'
  if first == nil then
    kind = '1'
    pending[id] = digest
  elseif first ~= '' and first ~= digest then
    if variantId == '' or ARGV[i + 6] ~= first then return {'STALE'} end
    local variant = digestOf(variantId)
    if variant == nil then
      kind = 'c'
      pending[variantId] = digest
    elseif variant ~= digest then
      return redis.error_reply('ID_CONFLICT ' .. variantId .. ' already names an event with other bytes')
    end
  end
  kinds[#kinds + 1] = kind
end
-- Pass 2: write.
local added = 0
for n, kind in ipairs(kinds) do
  local i = FIRST + (n - 1) * STRIDE
  if kind ~= '0' then
    local id, line = ARGV[i], ARGV[i + 3]
    if kind == 'c' then id, line = ARGV[i + 4], ARGV[i + 5] end
    redis.call('ZADD', KEYS[3], ARGV[i + 1], id)
    redis.call('HSET', KEYS[4], id, ARGV[i + 2])
    added = added + 1
    for o = 5, #KEYS do
      redis.call('XADD', KEYS[o], '*', 'id', id, 'scope', ARGV[6], 't', ARGV[i + 1], 'seen', ARGV[5], 'line', line)
    end
  end
end
`;

const TRIM_SEEN = `
local forget = '(' .. ARGV[4]
local old = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', forget)
for i = 1, #old, 500 do
  redis.call('HDEL', KEYS[4], unpack(old, i, math.min(i + 499, #old)))
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', forget)
`;

const LONGEST = `
local longest = 0
for o = 5, #KEYS do
  local length = redis.call('XLEN', KEYS[o])
  if length > longest then longest = length end
end
`;

/**
 * The heart of the no-loss / no-duplicate guarantee, one atomic step per page, fenced by the lease:
 * each event id not yet in the scope's seen-set is added to it (with a digest of its raw bytes) and
 * appended to every sink's outbox, then the checkpoint moves and the seen-set sheds ids no later poll
 * can return. A crash before the script leaves nothing half-done (the page is read again); after it,
 * everything is durable together.
 *
 * An id already seen with other bytes is not a duplicate but a conflict (a corrupted or forged copy may
 * arrive first): the variant is delivered too, under a derived id of its own (so idempotent sinks keep
 * both), flagged with an `id_conflict` anomaly that names the first copy's digest. The caller prepares
 * the variant's line from what it read before the script; the script checks every event first and, if
 * a conflict appears that the caller did not prepare for (the set changed in between), writes nothing
 * and answers STALE, so the caller reads again and retries.
 *
 * Ids committed before digests were kept have none; for them the id alone decides, as it did then.
 *
 * KEYS: lease, checkpoint, seen, digests, outbox…
 * ARGV: token, state, watermark, forgetBefore, seenAt, scope, then per event
 *   (id, score, digest, line, variantId, variantLine, firstDigest); variantId '' when no conflict was expected.
 * Returns a flag per event ('1' new, 'c' delivered as a conflicting variant, '0' duplicate) and the
 * longest outbox, or {'STALE'}.
 */
const COMMIT = new LuaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('LEASE_LOST lease of this scope is no longer held by this poll')
end
${ADD_EVENTS}
redis.call('HSET', KEYS[2], 'state', ARGV[2], 'token', ARGV[1], 'updatedAt', ARGV[5])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], 'watermark', ARGV[3]) end
if added > 0 then redis.call('HINCRBY', KEYS[2], 'committed', added) end
${TRIM_SEEN}
${LONGEST}
return {table.concat(kinds), longest}
`);

/**
 * The commit of pushed events (push sources such as the STACKIT Telemetry Router): the same steps as a
 * page, without lease or checkpoint (any replica may receive; the seen-set makes a redelivery harmless).
 * Backpressure is decided inside: if any outbox holds `maxOutbox` entries nothing is written ('FULL').
 * The seen-set is the one a poller of the scope uses, so an event polled and pushed with one id ships
 * once; it is trimmed here only for a scope nobody polls (no checkpoint), because a poller knows which
 * ids it may still read again. Pushed ids are also recorded, bounded, for the poll → push migration view.
 *
 * KEYS: checkpoint, via-push, seen, digests, outbox…
 * ARGV: maxOutbox, viaKeepAfter, viaMax, forgetBefore, seenAt, scope, then the events as for COMMIT.
 * Returns like COMMIT, or {'FULL', outbox index, length}.
 */
const PUSH_COMMIT = new LuaScript(`
local cap = tonumber(ARGV[1])
for o = 5, #KEYS do
  local length = redis.call('XLEN', KEYS[o])
  if length >= cap then return {'FULL', o - 4, length} end
end
${ADD_EVENTS}
for i = 7, #ARGV, 7 do
  redis.call('ZADD', KEYS[2], ARGV[i + 1], ARGV[i])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[3]) - 1)
if redis.call('EXISTS', KEYS[1]) == 0 then
${TRIM_SEEN}
end
${LONGEST}
return {table.concat(kinds), longest}
`);

export interface CommitResult {
  /**
   * The page's events that were new, in page order; the rest were already committed. A conflicting
   * variant appears here as delivered: with its derived id, `originalId` and the `id_conflict` anomaly.
   */
  readonly added: readonly AuditEvent[];
  /** The added events that are conflicting variants of an id first committed with other bytes. */
  readonly conflicts: readonly IdConflict[];
  readonly duplicates: number;
  /** Length of the fullest outbox this scope feeds, after the commit (backpressure). */
  readonly longestOutbox: number;
}

export interface IdConflict {
  /** The variant as delivered (derived id, `originalId`, anomaly). */
  readonly event: AuditEvent;
  /** rawSha256 of the copy committed first under the original id. */
  readonly firstRawSha256: string;
}

/** The lease was lost between acquiring it and committing: another poll may own the scope now. */
export class LeaseLostError extends Error {
  constructor(scopeKey: string) {
    super(`lease of ${scopeKey} was lost; the page was not committed and will be read again`);
    this.name = 'LeaseLostError';
  }
}

export interface PushCommitOptions {
  /** Entries an outbox may hold before pushes are refused. */
  readonly maxOutbox: number;
  /** Ids older than this (event time, epoch ms) may leave the seen-set of a scope nobody polls. */
  readonly forgetSeenBeforeMs: number;
  /** The migration view's record of pushed ids keeps event times at or after this… */
  readonly pathsKeepAfterMs: number;
  /** …and at most this many ids per scope. */
  readonly pathsMax: number;
}

/** A script that found the seen-set changed since it was read gives up this often before failing. */
const STALE_RETRIES = 5;

export class Committer {
  readonly #redis: RedisClient;
  readonly #keys: RedisKeys;

  constructor(redis: RedisClient, keys: RedisKeys) {
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
      this.#keys.seenDigests(scopeKey),
      ...sinks.map((sink) => this.#keys.outbox(sink)),
    ];
    const head: Array<string | number> = [
      lease.token,
      JSON.stringify(page.checkpoint.state),
      page.checkpoint.watermarkMs ?? '',
      Math.floor(page.forgetSeenBeforeMs),
      seenAtMs,
      scopeKey,
    ];
    try {
      return (await this.#run(COMMIT, keys, head, scopeKey, page.events, seenAtMs)) as CommitResult;
    } catch (error) {
      if (error instanceof Error && error.message.includes('LEASE_LOST')) throw new LeaseLostError(scopeKey);
      throw error;
    }
  }

  /**
   * Commits pushed events of one scope (PUSH_COMMIT): no lease, no checkpoint; refused whole, writing
   * nothing, when an outbox is full.
   */
  async commitPushed(
    scopeKey: string,
    sinks: readonly string[],
    events: readonly AuditEvent[],
    seenAtMs: number,
    options: PushCommitOptions,
  ): Promise<CommitResult | { readonly full: { readonly sink: string; readonly length: number } }> {
    const keys = [
      this.#keys.checkpoint(scopeKey),
      this.#keys.pushedIds(scopeKey),
      this.#keys.seen(scopeKey),
      this.#keys.seenDigests(scopeKey),
      ...sinks.map((sink) => this.#keys.outbox(sink)),
    ];
    const head: Array<string | number> = [
      options.maxOutbox,
      Math.floor(options.pathsKeepAfterMs),
      options.pathsMax,
      Math.floor(options.forgetSeenBeforeMs),
      seenAtMs,
      scopeKey,
    ];
    const result = await this.#run(PUSH_COMMIT, keys, head, scopeKey, events, seenAtMs);
    if ('full' in result)
      return { full: { sink: sinks[result.full.index - 1] as string, length: result.full.length } };
    return result;
  }

  async #run(
    script: LuaScript,
    keys: readonly string[],
    head: ReadonlyArray<string | number>,
    scopeKey: string,
    events: readonly AuditEvent[],
    seenAtMs: number,
  ): Promise<CommitResult | { readonly full: { readonly index: number; readonly length: number } }> {
    const digests = events.map(rawSha256);
    for (let attempt = 1; ; attempt++) {
      const candidates = await this.#candidates(keys, events, digests);
      const args = [...head];
      for (const c of candidates) {
        args.push(c.event.id, c.event.timeMs, c.digest, serializeEnvelope(c.event, seenAtMs));
        if (c.variant)
          args.push(c.variant.event.id, serializeEnvelope(c.variant.event, seenAtMs), c.variant.first);
        else args.push('', '', '');
      }
      const reply = (await script.run(this.#redis, keys, args)) as [string, number | undefined, number?];
      const [flags, longestOutbox] = reply;
      if (flags === 'FULL') return { full: { index: Number(reply[1]), length: Number(reply[2]) } };
      if (flags === 'STALE') {
        if (attempt < STALE_RETRIES) continue;
        throw new Error(
          `the seen-set of ${scopeKey} kept changing during the commit; the events will be read again`,
        );
      }
      await awaitReplica(this.#redis, `commit of events of ${scopeKey}`);
      const added: AuditEvent[] = [];
      const conflicts: IdConflict[] = [];
      candidates.forEach((c, i) => {
        if (flags[i] === '1') added.push(c.event);
        else if (flags[i] === 'c' && c.variant) {
          added.push(c.variant.event);
          conflicts.push({ event: c.variant.event, firstRawSha256: c.variant.first });
        }
      });
      return {
        added,
        conflicts,
        duplicates: events.length - added.length,
        longestOutbox: longestOutbox ?? 0,
      };
    }
  }

  /**
   * The events worth sending to the script, judged by what the seen-set holds now. Overlapping polls
   * re-read mostly known events, and skipping those before serializing saves the work; it is safe
   * because an id in the seen-set stays there while it can still be returned, and the script checks
   * every remaining event again atomically. An id known with other bytes gets its variant prepared.
   */
  async #candidates(
    keys: readonly string[],
    events: readonly AuditEvent[],
    digests: readonly string[],
  ): Promise<Candidate[]> {
    if (events.length === 0) return [];
    const ids = events.map((e) => e.id);
    const results = await this.#redis
      .pipeline()
      .zmscore(keys[2] as string, ...ids)
      .hmget(keys[3] as string, ...ids)
      .exec();
    const [scoresReply, digestsReply] = results ?? [];
    if (scoresReply?.[0] || digestsReply?.[0]) throw scoresReply?.[0] ?? digestsReply?.[0];
    const scores = scoresReply?.[1] as Array<string | null>;
    const stored = digestsReply?.[1] as Array<string | null>;
    /** id → digest of its first copy ('' when unknown: committed before digests were kept). */
    const known = new Map<string, string>();
    const candidates: Candidate[] = [];
    events.forEach((event, i) => {
      const digest = digests[i] as string;
      const first = known.get(event.id) ?? (scores[i] == null ? undefined : (stored[i] ?? ''));
      if (first === undefined) {
        known.set(event.id, digest);
        candidates.push({ event, digest });
      } else if (first !== '' && first !== digest) {
        candidates.push({ event, digest, variant: { event: conflictVariant(event, first, digest), first } });
      }
    });
    return candidates;
  }
}

interface Candidate {
  readonly event: AuditEvent;
  readonly digest: string;
  readonly variant?: { readonly event: AuditEvent; readonly first: string };
}

/**
 * The copy of an event whose id was first committed with other bytes, as it is delivered: under an id
 * derived from its own digest (stable, so a re-read of the same copy is a duplicate, and distinct at
 * sinks that dedupe by id: ES `_id`, the file sink), with the provider's id kept in `originalId` and
 * an `id_conflict` anomaly naming the first copy's digest.
 */
export function conflictVariant(event: AuditEvent, firstRawSha256: string, rawSha256: string): AuditEvent {
  return {
    ...event,
    id: `${event.id}~sha256:${rawSha256}`,
    originalId: event.id,
    anomalies: [
      ...(event.anomalies ?? []),
      `id_conflict: id ${JSON.stringify(event.id)} was first committed with other bytes (rawSha256 ${firstRawSha256}); this copy is delivered under its own id`,
    ],
  };
}
