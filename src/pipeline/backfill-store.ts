import { redactSecrets } from '../config/redact.ts';
import type { RedisClient } from '../redis/client.ts';
import type { TimeRange } from '../sources/source.ts';
import type { RedisKeys } from './keys.ts';
import { LuaScript } from './script.ts';

/**
 * The backfill of each scope, in Redis: which range of history its current run reads, whether it is
 * done, and the job that carries it. One run per scope at a time; runs only ever extend further back
 * (a new run reads from the requested start up to where the previous one began), so the ranges of a
 * scope's runs and its live lane never overlap and no event has two owners.
 */

export type BackfillStatus = 'running' | 'done';
export type BackfillOrigin = 'lookback' | 'command';

export interface BackfillRun {
  /** The live scope's key. */
  readonly scope: string;
  readonly runId: string;
  /** This run's range `[fromMs, toMs)`. */
  readonly fromMs: number;
  readonly toMs: number;
  /** The live lane's floor when the first run was made: where the history of this scope ends. */
  readonly floorMs: number;
  readonly status: BackfillStatus;
  readonly origin: BackfillOrigin;
  readonly createdAtMs: number;
  readonly doneAtMs: number | undefined;
  /** The BullMQ job that carries it (the latest one enqueued). */
  readonly jobId: string | undefined;
  /** Failed slices in a row (backoff before the next). */
  readonly failures: number;
  /** The next slice should not start before this (the rest of the range is not settled yet). */
  readonly notBeforeMs: number | undefined;
  readonly lastError: string | undefined;
}

/** Where a run of a scope reads its history: a scope of its own, with its own checkpoint, seen-set and lease. */
export function backfillScopeKey(scopeKey: string): string {
  return `${scopeKey}${BACKFILL_SUFFIX}`;
}

const BACKFILL_SUFFIX = '#backfill';

/** Whether events of this (outbox) scope key were read by the backfill lane: history, old by design. */
export function isBackfillScopeKey(scopeKey: string): boolean {
  return scopeKey.endsWith(BACKFILL_SUFFIX);
}

export type RequestOutcome =
  /** A first run was created. */
  | 'created'
  /** The previous run is done; a new one reads further back, up to where it began. */
  | 'extended'
  /** Runs made or running already cover the requested start. */
  | 'covered'
  /** A run is going; it must finish before history further back can be requested. */
  | 'busy';

/** KEYS: record, index. ARGV: scope, from, to, floor, origin, now, new run id. */
const REQUEST = new LuaScript(`
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  redis.call('HSET', KEYS[1], 'scope', ARGV[1], 'runId', ARGV[7], 'fromMs', ARGV[2], 'toMs', ARGV[3],
    'floorMs', ARGV[4], 'status', 'running', 'origin', ARGV[5], 'createdAtMs', ARGV[6], 'jobSeq', 0, 'failures', 0)
  redis.call('SADD', KEYS[2], ARGV[1])
  return 'created'
end
local from = tonumber(redis.call('HGET', KEYS[1], 'fromMs'))
if tonumber(ARGV[2]) >= from then return 'covered' end
if status == 'running' then return 'busy' end
redis.call('HSET', KEYS[1], 'runId', ARGV[7], 'fromMs', ARGV[2], 'toMs', from, 'status', 'running',
  'origin', ARGV[5], 'createdAtMs', ARGV[6], 'failures', 0, 'jobId', '')
redis.call('HDEL', KEYS[1], 'doneAtMs', 'lastError')
return 'extended'
`);

/** KEYS: record, backfill seen-set, its digests. ARGV: run id, now. Marks the run done and frees its seen-set. */
const COMPLETE = new LuaScript(`
if redis.call('HGET', KEYS[1], 'runId') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'status') ~= 'running' then
  return 0
end
redis.call('HSET', KEYS[1], 'status', 'done', 'doneAtMs', ARGV[2], 'failures', 0)
redis.call('HDEL', KEYS[1], 'lastError')
redis.call('DEL', KEYS[2], KEYS[3])
return 1
`);

/** KEYS: record. ARGV: run id, then field/value pairs; increments `failures` by ARGV[2] when given. */
const UPDATE = new LuaScript(`
if redis.call('HGET', KEYS[1], 'runId') ~= ARGV[1] then return 0 end
local failures = tonumber(ARGV[2])
if failures < 0 then redis.call('HSET', KEYS[1], 'failures', 0); redis.call('HDEL', KEYS[1], 'lastError')
elseif failures > 0 then redis.call('HINCRBY', KEYS[1], 'failures', failures) end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
`);

export class BackfillStore {
  readonly #redis: RedisClient;
  readonly #keys: RedisKeys;

  constructor(redis: RedisClient, keys: RedisKeys) {
    this.#redis = redis;
    this.#keys = keys;
  }

  async get(scopeKey: string): Promise<BackfillRun | undefined> {
    return toRun(await this.#redis.hgetall(this.#keys.backfill(scopeKey)));
  }

  async list(): Promise<BackfillRun[]> {
    const scopes = (await this.#redis.smembers(this.#keys.backfills())).sort();
    if (scopes.length === 0) return [];
    const pipeline = this.#redis.pipeline();
    for (const scope of scopes) pipeline.hgetall(this.#keys.backfill(scope));
    const results = (await pipeline.exec()) ?? [];
    const runs: BackfillRun[] = [];
    for (const [error, fields] of results) {
      if (error) throw error;
      const run = toRun(fields as Record<string, string>);
      if (run) runs.push(run);
    }
    return runs;
  }

  /**
   * Asks for the history `[range.fromMs, floorMs)` of a scope: creates the first run, extends a finished
   * one further back, or says it is covered or busy. Atomic, so two requests never make two runs.
   */
  async request(
    scopeKey: string,
    range: TimeRange,
    origin: BackfillOrigin,
    nowMs: number,
  ): Promise<{ outcome: RequestOutcome; run: BackfillRun }> {
    const runId = `${nowMs.toString(36)}${Math.random().toString(36).slice(2, 8)}`;
    const outcome = (await REQUEST.run(
      this.#redis,
      [this.#keys.backfill(scopeKey), this.#keys.backfills()],
      [
        scopeKey,
        Math.floor(range.fromMs),
        Math.floor(range.toMs),
        Math.floor(range.toMs),
        origin,
        nowMs,
        runId,
      ],
    )) as RequestOutcome;
    const run = await this.get(scopeKey);
    if (!run) throw new Error(`backfill record of ${scopeKey} vanished`);
    return { outcome, run };
  }

  /** A fresh job id for the run (`bf-<run>-<n>`; BullMQ refuses ids with colons), recorded as its current job. */
  async nextJob(run: BackfillRun): Promise<string> {
    const seq = await this.#redis.hincrby(this.#keys.backfill(run.scope), 'jobSeq', 1);
    const jobId = `bf-${run.runId}-${seq}`;
    await UPDATE.run(this.#redis, [this.#keys.backfill(run.scope)], [run.runId, 0, 'jobId', jobId]);
    return jobId;
  }

  async recordFailure(run: BackfillRun, message: string): Promise<void> {
    await UPDATE.run(
      this.#redis,
      [this.#keys.backfill(run.scope)],
      [run.runId, 1, 'lastError', redactSecrets(message).slice(0, 500)],
    );
  }

  /** The slice could read nothing yet: the next one waits until `notBeforeMs`. */
  async defer(run: BackfillRun, notBeforeMs: number): Promise<void> {
    await UPDATE.run(
      this.#redis,
      [this.#keys.backfill(run.scope)],
      [run.runId, 0, 'notBeforeMs', notBeforeMs],
    );
  }

  async recordProgress(run: BackfillRun): Promise<void> {
    if (run.failures === 0) return;
    await UPDATE.run(this.#redis, [this.#keys.backfill(run.scope)], [run.runId, -1]);
  }

  /** Marks the run done (if it is still the current one) and deletes its seen-set, which no read needs any more. */
  async complete(run: BackfillRun, nowMs: number): Promise<boolean> {
    const result = await COMPLETE.run(
      this.#redis,
      [
        this.#keys.backfill(run.scope),
        this.#keys.seen(backfillScopeKey(run.scope)),
        this.#keys.seenDigests(backfillScopeKey(run.scope)),
      ],
      [run.runId, nowMs],
    );
    return Number(result) === 1;
  }
}

function toRun(fields: Record<string, string>): BackfillRun | undefined {
  if (fields.scope === undefined || fields.runId === undefined) return undefined;
  const num = (key: string): number => Number(fields[key]);
  const optionalNum = (key: string): number | undefined =>
    fields[key] === undefined || fields[key] === '' ? undefined : Number(fields[key]);
  return {
    scope: fields.scope,
    runId: fields.runId,
    fromMs: num('fromMs'),
    toMs: num('toMs'),
    floorMs: num('floorMs'),
    status: fields.status === 'done' ? 'done' : 'running',
    origin: fields.origin === 'lookback' ? 'lookback' : 'command',
    createdAtMs: num('createdAtMs'),
    doneAtMs: optionalNum('doneAtMs'),
    jobId: fields.jobId === undefined || fields.jobId === '' ? undefined : fields.jobId,
    failures: optionalNum('failures') ?? 0,
    notBeforeMs: optionalNum('notBeforeMs'),
    lastError: fields.lastError === undefined || fields.lastError === '' ? undefined : fields.lastError,
  };
}
