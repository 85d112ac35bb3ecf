import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { redactSecrets } from '../config/redact.ts';
import { type BackoffPolicy, backoffDelayMs, sleep } from '../http/retry.ts';
import type { Metrics } from '../observability/metrics.ts';
import { duplicateClient, type RedisClient } from '../redis/client.ts';
import type { BatchPolicy, Sink, Verdict } from '../sinks/sink.ts';
import { isBackfillScopeKey } from './backfill-store.ts';
import type { OutboxEvent } from './envelope.ts';
import { DELIVERY_GROUP, type RedisKeys } from './keys.ts';
import { LuaScript } from './script.ts';

/**
 * Acknowledges settled entries and removes them from the outbox; rejected ones are first copied to the
 * dead-letter stream with their reason. One atomic step, so an entry is never both gone and not
 * dead-lettered. It also updates the batch's seal (stable batches): '' deletes it, '-' leaves it alone,
 * anything else becomes the seal's id list, but only while the seal is still this consumer's: a replica
 * that was presumed dead must not take back a batch another one has recovered.
 * KEYS: outbox, dead-letter, seals. ARGV: group, now, seal field, seal ids (JSON) | '' | '-', consumer,
 * then (entry id, 'ack'|'dlq', reason)…
 * Returns 1 while the batch is still this consumer's, 0 once another consumer owns its seal.
 */
const SETTLE = new LuaScript(`
for i = 6, #ARGV, 3 do
  local id, action, reason = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if action == 'dlq' then
    local found = redis.call('XRANGE', KEYS[1], id, id)
    local fields = {'entry', id, 'reason', reason, 'rejectedAt', ARGV[2]}
    if found[1] then
      for _, v in ipairs(found[1][2]) do fields[#fields + 1] = v end
    end
    redis.call('XADD', KEYS[2], '*', unpack(fields))
  end
  redis.call('XACK', KEYS[1], ARGV[1], id)
  redis.call('XDEL', KEYS[1], id)
end
if ARGV[4] == '-' then return 1 end
local current = redis.call('HGET', KEYS[3], ARGV[3])
if not current then return ARGV[4] == '' and 1 or 0 end
local seal = cjson.decode(current)
if seal.c ~= ARGV[5] then return 0 end
if ARGV[4] == '' then
  redis.call('HDEL', KEYS[3], ARGV[3])
else
  seal.ids = cjson.decode(ARGV[4])
  redis.call('HSET', KEYS[3], ARGV[3], cjson.encode(seal))
end
return 1
`);

/**
 * Records a batch's composition (stable batches), but only with entries still pending for this
 * consumer: a replica that stalled past its heartbeat (a paused Redis, a frozen process) may find that
 * another one has taken its entries over, and a batch of entries it no longer owns would be a second,
 * differently composed copy of events the new owner sends too.
 * KEYS: outbox, seals. ARGV: group, consumer, seal field, seal value, entry ids…
 * Returns the ids this consumer no longer owns; the seal is written only when there are none.
 */
const SEAL = new LuaScript(`
local lost = {}
for i = 5, #ARGV do
  local mine = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #mine == 0 then lost[#lost + 1] = ARGV[i] end
end
if #lost == 0 then redis.call('HSET', KEYS[2], ARGV[3], ARGV[4]) end
return lost
`);

/**
 * Takes over a dead consumer: claims its pending entries and the seals of the batches it had formed,
 * in one step, so another replica can never claim the entries without the seals (or the reverse).
 * KEYS: outbox, seals. ARGV: group, me, dead consumer, min idle ms, entry ids…
 * Returns the claimed entry ids.
 */
const RECLAIM = new LuaScript(`
local ids = {}
for i = 5, #ARGV do ids[#ids + 1] = ARGV[i] end
local claimed = {}
if #ids > 0 then
  claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[4], unpack(ids))
  local flat = {}
  for _, entry in ipairs(claimed) do flat[#flat + 1] = type(entry) == 'table' and entry[1] or entry end
  claimed = flat
end
local seals = redis.call('HGETALL', KEYS[2])
for i = 1, #seals, 2 do
  local seal = cjson.decode(seals[i + 1])
  if seal.c == ARGV[3] then
    seal.c = ARGV[2]
    redis.call('HSET', KEYS[2], seals[i], cjson.encode(seal))
  end
end
return claimed
`);

/**
 * Forgets a consumer that is gone, only if it still has no heartbeat and nothing pending, in one step:
 * checked apart, a live but stalled consumer could read entries between the check and the delete, and
 * DELCONSUMER would leave them pending for no one.
 * KEYS: outbox, heartbeat. ARGV: group, consumer. Returns 1 when it was deleted.
 */
const FORGET_CONSUMER = new LuaScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
`);

/**
 * Re-queues orphans: entries the group has delivered (at or before its last-delivered id) that no
 * consumer has pending. Settling removes an entry in the same step as its acknowledgement, so such an
 * entry was never settled; nothing would ever read it again (a consumer deleted by hand, or by a
 * version without FORGET_CONSUMER). It is appended anew and the orphan removed, atomically. Only the
 * oldest `max` delivered entries are looked at per call; orphans are old, so they come to the front.
 * KEYS: outbox. ARGV: group, max. Returns the number re-queued.
 */
const REQUEUE_ORPHANS = new LuaScript(`
local last
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local f = {}
  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
  if f['name'] == ARGV[1] then last = f['last-delivered-id'] end
end
if not last then return 0 end
local moved = 0
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', last, 'COUNT', tonumber(ARGV[2]))) do
  if #redis.call('XPENDING', KEYS[1], ARGV[1], entry[1], entry[1], 1) == 0 then
    redis.call('XADD', KEYS[1], '*', unpack(entry[2]))
    redis.call('XDEL', KEYS[1], entry[1])
    moved = moved + 1
  end
end
return moved
`);

export interface DeliveryWorkerOptions {
  readonly sink: Sink;
  /** A connection of its own: XREADGROUP BLOCK holds it while waiting (settling uses a duplicate). */
  readonly redis: RedisClient;
  readonly keys: RedisKeys;
  readonly instanceId: string;
  /** Default events per batch for sinks that do not say (`daemon.delivery.batchSize`). */
  readonly batchSize: number;
  /** Overrides of the sink's batching wishes (tests). */
  readonly policy?: Partial<BatchPolicy>;
  readonly retry: BackoffPolicy;
  /** A consumer whose heartbeat is older than this is presumed dead and its entries are reclaimed. */
  readonly consumerTimeoutMs: number;
  readonly blockMs?: number;
  readonly metrics: Metrics;
  /** Carries the sink already (a child logger with `sink`). */
  readonly log: Logger;
}

type RawEntry = [id: string, fields: string[] | null];
type Settlement = [entryId: string, action: 'ack' | 'dlq', reason: string];

interface Batch {
  events: OutboxEvent[];
  /** Seal field when the batch's composition is recorded in Redis. */
  seal?: string;
}

/** One delivery slot: its events go out in order, one batch at a time. */
interface Lane {
  readonly index: number;
  readonly queue: OutboxEvent[];
  /** Batches recovered from seals; they go before anything queued. */
  readonly sealed: Batch[];
  wake: (() => void) | undefined;
  /** Failed attempts in a row of the batch this lane is on. */
  streak: number;
}

/**
 * Moves one sink's outbox into the sink. A reader takes entries with the consumer group and spreads
 * them over `concurrency` lanes (by the sink's partition key, so one Loki stream stays in one lane);
 * each lane forms batches within the sink's limits (events, bytes, linger), sends them, settles each
 * event by its verdict, and keeps retrying what is retryable (with backoff, honouring Retry-After) for
 * as long as it takes, because an audit shipper must not give up on an event. A lane does not move
 * past a batch it is retrying, so per-partition order holds. Entries a crashed consumer left pending
 * are reclaimed once its heartbeat has expired; for stable-batch sinks the batches it had formed are
 * re-sent exactly as they were.
 */
export class DeliveryWorker {
  readonly consumer: string;
  readonly policy: BatchPolicy;
  readonly #o: DeliveryWorkerOptions;
  readonly #stream: string;
  readonly #sealKey: string;
  readonly #heartbeatKey: string;
  readonly #stop = new AbortController();
  /** For everything but the blocking read. */
  readonly #ctl: RedisClient;
  readonly #lanes: Lane[];
  /** Entries in a lane's queue or in flight: a read of our own pending list must not take them twice. */
  readonly #held = new Set<string>();
  #heldBytes = 0;
  #roomFreed: (() => void) | undefined;
  #loops: Promise<void>[] = [];
  #heartbeat: NodeJS.Timeout | undefined;
  #lastReclaimMs = 0;
  /** Set after the first heartbeat: a later one that finds none means we were presumed dead. */
  #beaten = false;
  /** Set when entries became ours by reclaim: our pending list must be read before new entries. */
  #scanPending = false;
  #nextLane = 0;
  /** Redis's generation marker when entries were last read: compared when letting entries go. */
  #readGeneration: string | null = null;

  constructor(options: DeliveryWorkerOptions) {
    this.#o = options;
    const wish = { ...options.sink.batching, ...options.policy };
    this.policy = {
      maxEvents: Math.max(1, wish.maxEvents ?? options.batchSize),
      maxBytes: Math.max(1, wish.maxBytes ?? Number.POSITIVE_INFINITY),
      lingerMs: Math.max(0, wish.lingerMs ?? 0),
      concurrency: Math.max(1, wish.concurrency ?? 1),
      stableBatches: wish.stableBatches ?? false,
    };
    // Unique per process run, so a restarted process never mistakes a dead predecessor's entries for its own.
    this.consumer = `${options.instanceId}:${randomUUID().slice(0, 8)}`;
    this.#stream = options.keys.outbox(options.sink.name);
    // Next to the outbox and under the same hash-tagged prefix, so one script can touch both.
    this.#sealKey = `${options.keys.prefix}:batches:${options.sink.name}`;
    this.#heartbeatKey = options.keys.consumerHeartbeat(options.sink.name, this.consumer);
    this.#ctl = duplicateClient(options.redis);
    this.#ctl.on('error', () => undefined); // the blocking connection's handler reports outages
    this.#lanes = Array.from({ length: this.policy.concurrency }, (_, index) => ({
      index,
      queue: [],
      sealed: [],
      wake: undefined,
      streak: 0,
    }));
  }

  async start(): Promise<void> {
    await this.#beat();
    this.#heartbeat = setInterval(
      () => {
        this.#beat().catch((error: unknown) => this.#o.log.warn({ err: error }, 'delivery heartbeat failed'));
      },
      Math.max(100, Math.floor(this.#o.consumerTimeoutMs / 3)),
    );
    this.#heartbeat.unref();
    this.#loops = [this.#readLoop(), ...this.#lanes.map((lane) => this.#laneLoop(lane))];
  }

  /**
   * Stops reading, lets in-flight sends finish (or abandons them at the deadline: their entries stay
   * pending and are reclaimed), and drops the heartbeat so other replicas take over at once.
   */
  async stop(deadlineMs: number): Promise<void> {
    this.#stop.abort(new Error('shutdown'));
    clearInterval(this.#heartbeat);
    for (const lane of this.#lanes) lane.wake?.();
    this.#roomFreed?.();
    const timeout = new Promise<'timeout'>((resolve) =>
      setTimeout(() => resolve('timeout'), deadlineMs).unref(),
    );
    const ended = await Promise.race([Promise.all(this.#loops).then(() => 'done' as const), timeout]);
    if (ended === 'timeout')
      this.#o.log.warn('delivery did not finish before the deadline; its batch stays pending');
    this.#o.metrics.sinkInflightBatches.set({ sink: this.#o.sink.name }, 0);
    await this.#ctl.del(this.#heartbeatKey).catch(() => undefined);
    this.#ctl.disconnect();
    this.#o.redis.disconnect();
  }

  async #beat(): Promise<void> {
    const before = await this.#ctl.set(
      this.#heartbeatKey,
      this.consumer,
      'PX',
      this.#o.consumerTimeoutMs,
      'GET',
    );
    if (before === null && this.#beaten) {
      // Another replica may have taken our entries; #seal and #settle make sure we do not send them twice.
      this.#o.log.warn(
        `sink "${this.#o.sink.name}": this replica's delivery heartbeat had expired (a stall longer than ` +
          'consumerTimeout: a paused Redis or process); other replicas may have taken its events over',
      );
    }
    this.#beaten = true;
  }

  // ---- reading -------------------------------------------------------------------------------------

  async #readLoop(): Promise<void> {
    const signal = this.#stop.signal;
    const { maxEvents, maxBytes, concurrency } = this.policy;
    // Enough for every lane to fill a batch while the next one is read.
    const capEvents = maxEvents * (concurrency + 1);
    const capBytes = Number.isFinite(maxBytes) ? maxBytes * (concurrency + 1) : Number.POSITIVE_INFINITY;
    let failures = 0;
    while (!signal.aborted) {
      try {
        this.#readGeneration = await this.#ctl.get(this.#o.keys.generation());
        await this.#reclaimIfDue();
        if (this.#held.size >= capEvents || this.#heldBytes >= capBytes) {
          await new Promise<void>((resolve) => {
            this.#roomFreed = resolve;
            setTimeout(resolve, 1_000).unref();
          });
          continue;
        }
        const room = Math.min(capEvents - this.#held.size, maxEvents);
        const entries = this.#scanPending ? await this.#readPending(room) : await this.#readNew(room);
        await this.#accept(entries);
        failures = 0;
      } catch (error) {
        if (signal.aborted) break;
        if (isMissingStream(error)) {
          // Redis came back empty (a failover to an empty replica, a restart without persistence, a
          // FLUSHALL): without the group nothing could ever be read again. Create it and carry on.
          const recreated = await this.#recreateGroup().catch(() => false);
          if (recreated) continue;
        }
        const waitMs = backoffDelayMs(failures++, { initialMs: 500, maxMs: 30_000 });
        this.#o.log.error(
          { err: error, waitMs },
          `delivery to sink "${this.#o.sink.name}" interrupted; resuming`,
        );
        await sleep(waitMs, signal).catch(() => undefined);
      }
    }
  }

  /**
   * Creates the outbox stream and its consumer group again after Redis lost them. Entries this worker
   * holds in memory are still delivered (their outbox entries are gone; settling them is a no-op), and
   * whatever the polls commit from now on is read from the new group's start.
   */
  async #recreateGroup(): Promise<boolean> {
    try {
      await this.#ctl.xgroup('CREATE', this.#stream, DELIVERY_GROUP, '0', 'MKSTREAM');
    } catch (error) {
      if (error instanceof Error && error.message.startsWith('BUSYGROUP')) return true;
      throw error;
    }
    this.#scanPending = false;
    this.#o.log.error(
      { stream: this.#stream },
      `sink "${this.#o.sink.name}": its outbox stream or consumer group was gone (Redis lost its state?); ` +
        'created it again, delivery continues with what is committed from now on',
    );
    return true;
  }

  async #readNew(count: number): Promise<RawEntry[]> {
    // The typed method, not redis.call: it returns the same shape under RESP2 and RESP3.
    const reply = await this.#o.redis.xreadgroup(
      'GROUP',
      DELIVERY_GROUP,
      this.consumer,
      'COUNT',
      count,
      'BLOCK',
      this.#o.blockMs ?? 1_000,
      'STREAMS',
      this.#stream,
      '>',
    );
    return ((reply as Array<[string, RawEntry[]]> | null)?.[0]?.[1] ?? []) as RawEntry[];
  }

  /** Our own pending entries that no lane holds (reclaimed ones), oldest first. */
  async #readPending(count: number): Promise<RawEntry[]> {
    const fresh: RawEntry[] = [];
    let cursor = '0';
    while (fresh.length < count) {
      const reply = await this.#ctl.xreadgroup(
        'GROUP',
        DELIVERY_GROUP,
        this.consumer,
        'COUNT',
        Math.max(count, 100),
        'STREAMS',
        this.#stream,
        cursor,
      );
      const page = ((reply as Array<[string, RawEntry[]]> | null)?.[0]?.[1] ?? []) as RawEntry[];
      if (page.length === 0) {
        this.#scanPending = false;
        break;
      }
      for (const entry of page) if (!this.#held.has(entry[0])) fresh.push(entry);
      cursor = (page.at(-1) as RawEntry)[0];
    }
    return fresh;
  }

  /** Hands read entries to lanes; entries that are not events go to the dead-letter stream at once. */
  async #accept(entries: RawEntry[]): Promise<void> {
    const { sink, log } = this.#o;
    const broken: Settlement[] = [];
    for (const entry of entries) {
      if (this.#held.has(entry[0])) continue;
      const parsed = parseEntry(entry);
      if (typeof parsed === 'string') {
        // Not an event this shipper wrote (or emptied by hand): kept in the dead-letter stream, not dropped.
        log.error({ entry: entry[0] }, `outbox of sink "${sink.name}": ${parsed}; dead-lettered`);
        broken.push([entry[0], 'dlq', parsed]);
        continue;
      }
      this.#hold(parsed);
      const lane = this.#laneFor(parsed);
      lane.queue.push(parsed);
      lane.wake?.();
    }
    if (broken.length > 0) await this.#settle(broken, undefined, undefined);
  }

  #laneFor(event: OutboxEvent): Lane {
    const lanes = this.#lanes;
    if (lanes.length === 1) return lanes[0] as Lane;
    const key = this.#o.sink.partitionKey?.(event);
    if (key !== undefined) return lanes[hashString(key) % lanes.length] as Lane;
    // No ordering wish: the shortest queue, ties in turn.
    let best = lanes[this.#nextLane++ % lanes.length] as Lane;
    for (const lane of lanes) if (lane.queue.length < best.queue.length) best = lane;
    return best;
  }

  #hold(event: OutboxEvent): void {
    readIn.set(event, this.#readGeneration);
    this.#held.add(event.entryId);
    this.#heldBytes += byteLength(event);
  }

  /**
   * Lets go of events that are no longer this consumer's (their seal or pending entry belongs to someone
   * else now). Normally another replica took them over. But if Redis lost its state since they were read
   * (the generation marker is gone or changed), nobody has them: their outbox entries went with the
   * state, so they are appended to the outbox again instead of being dropped (a sink that cannot dedupe
   * may then get them twice, as after any loss of Redis state). Returns how many were appended again.
   */
  async #letGo(events: readonly OutboxEvent[]): Promise<number> {
    if (events.length === 0) return 0;
    const now = await this.#ctl.get(this.#o.keys.generation());
    const orphans = events.filter((e) => readIn.has(e) && readIn.get(e) !== now);
    if (orphans.length > 0) {
      const pipeline = this.#ctl.pipeline();
      for (const e of orphans) {
        pipeline.xadd(
          this.#stream,
          '*',
          'id',
          e.id,
          'scope',
          e.scopeKey,
          't',
          e.timeMs,
          'seen',
          e.seenAtMs,
          'line',
          e.line,
        );
      }
      for (const [error] of (await pipeline.exec()) ?? []) if (error) throw error;
      this.#o.log.error(
        { events: orphans.length, firstEventId: orphans[0]?.id },
        `sink "${this.#o.sink.name}": Redis lost its state while ${orphans.length} events were being delivered; ` +
          'appended them to the outbox again',
      );
    }
    this.#release(events);
    return orphans.length;
  }

  #release(events: readonly OutboxEvent[]): void {
    for (const event of events) {
      if (this.#held.delete(event.entryId)) this.#heldBytes -= byteLength(event);
    }
    this.#roomFreed?.();
    this.#roomFreed = undefined;
  }

  // ---- lanes ---------------------------------------------------------------------------------------

  async #laneLoop(lane: Lane): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      let batch: Batch | undefined;
      try {
        batch = await this.#nextBatch(lane, signal);
      } catch (error) {
        this.#o.log.error({ err: error }, `sink "${this.#o.sink.name}": cannot record a batch; retrying`);
        await sleep(1_000, signal).catch(() => undefined);
        continue;
      }
      if (!batch) continue;
      const gauge = { sink: this.#o.sink.name };
      this.#o.metrics.sinkInflightBatches.inc(gauge);
      try {
        await this.#deliver(lane, batch, signal);
      } catch (error) {
        if (signal.aborted) break;
        // Only Redis failures get here (sends never throw out of #deliver): the batch's entries stay
        // pending; put them back at the head of the lane and try again after a pause.
        this.#o.log.error(
          { err: error },
          `delivery to sink "${this.#o.sink.name}" could not settle a batch; retrying`,
        );
        if (batch.seal) lane.sealed.unshift(batch);
        else lane.queue.unshift(...batch.events.filter((e) => this.#held.has(e.entryId)));
        await sleep(1_000, signal).catch(() => undefined);
      } finally {
        this.#o.metrics.sinkInflightBatches.dec(gauge);
      }
    }
  }

  /** The lane's next batch: a recovered sealed one, else from the queue within the limits and linger. */
  async #nextBatch(lane: Lane, signal: AbortSignal): Promise<Batch | undefined> {
    const sealed = lane.sealed.shift();
    if (sealed) return sealed;
    const { maxEvents, maxBytes, lingerMs } = this.policy;
    for (;;) {
      if (signal.aborted) return undefined;
      if (lane.queue.length === 0) {
        await this.#idle(lane, undefined, signal);
        if (lane.sealed.length > 0) return lane.sealed.shift();
        continue;
      }
      let bytes = 0;
      let count = 0;
      for (const event of lane.queue) {
        const size = byteLength(event);
        if (count >= maxEvents || (count > 0 && bytes + size > maxBytes)) break;
        bytes += size;
        count++;
      }
      const full = count < lane.queue.length || count >= maxEvents || bytes >= maxBytes;
      if (!full && lingerMs > 0) {
        // Age from when the oldest event entered the outbox (its stream id), so a restart does not
        // make old events wait a second linger.
        const dueMs = entryTimeMs(lane.queue[0] as OutboxEvent) + lingerMs;
        const waitMs = dueMs - Date.now();
        if (waitMs > 0) {
          await this.#idle(lane, waitMs, signal);
          if (lane.sealed.length > 0) return lane.sealed.shift();
          continue;
        }
      }
      const events = lane.queue.splice(0, count);
      const batch: Batch = { events };
      if (this.policy.stableBatches) {
        let kept: boolean;
        try {
          kept = await this.#seal(batch);
        } catch (error) {
          lane.queue.unshift(...batch.events);
          throw error;
        }
        if (!kept) continue;
      }
      return batch;
    }
  }

  /** Waits until the reader adds to this lane, the timeout passes, or the worker stops. */
  #idle(lane: Lane, timeoutMs: number | undefined, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        lane.wake = undefined;
        resolve();
      };
      const timer = timeoutMs !== undefined ? setTimeout(done, timeoutMs) : undefined;
      lane.wake = done;
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /**
   * Records the batch's composition before its first send, so a crash cannot change it. Events another
   * consumer has taken over meanwhile are left out (and let go); returns false when none are left.
   */
  async #seal(batch: Batch): Promise<boolean> {
    for (;;) {
      const field = (batch.events[0] as OutboxEvent).entryId;
      const ids = batch.events.map((e) => e.entryId);
      const value = JSON.stringify({ c: this.consumer, ids });
      const lost = new Set(
        (await SEAL.run(
          this.#ctl,
          [this.#stream, this.#sealKey],
          [DELIVERY_GROUP, this.consumer, field, value, ...ids],
        )) as string[],
      );
      if (lost.size === 0) {
        batch.seal = field;
        return true;
      }
      const orphans = await this.#letGo(batch.events.filter((e) => lost.has(e.entryId)));
      if (orphans < lost.size) {
        this.#o.log.warn(
          { entries: lost.size - orphans },
          `sink "${this.#o.sink.name}": ${lost.size - orphans} events were taken over by another replica while this one ` +
            'was presumed dead (a stall longer than consumerTimeout); leaving them to it',
        );
      }
      batch.events = batch.events.filter((e) => !lost.has(e.entryId));
      if (batch.events.length === 0) return false;
    }
  }

  async #deliver(lane: Lane, batch: Batch, signal: AbortSignal): Promise<void> {
    const { sink, metrics, log } = this.#o;
    const labels = { sink: sink.name };
    metrics.sinkBatchEvents.observe(labels, batch.events.length);
    metrics.sinkBatchBytes.observe(
      labels,
      batch.events.reduce((n, e) => n + byteLength(e), 0),
    );
    let pending = batch.events;
    for (let attempt = 0; pending.length > 0; attempt++) {
      const verdicts = await this.#send(pending, signal);
      const retry: OutboxEvent[] = [];
      const done: Settlement[] = [];
      let retryAfterMs = 0;
      const nowMs = Date.now();
      pending.forEach((event, i) => {
        const verdict = verdicts[i] as Verdict;
        switch (verdict.kind) {
          case 'delivered':
            // Backfilled history is days old by design; it would drown what freshness is for.
            if (!isBackfillScopeKey(event.scopeKey)) {
              metrics.freshnessSeconds.observe(labels, Math.max(0, (nowMs - event.timeMs) / 1000));
            }
            done.push([event.entryId, 'ack', '']);
            break;
          case 'duplicate':
            done.push([event.entryId, 'ack', '']);
            break;
          case 'rejected':
            log.error(
              { eventId: event.id, scope: event.scopeKey, reason: verdict.reason },
              `sink "${sink.name}" rejected event ${event.id}: ${verdict.reason}; dead-lettered`,
            );
            done.push([event.entryId, 'dlq', verdict.reason]);
            break;
          case 'retry':
            retryAfterMs = Math.max(retryAfterMs, verdict.retryAfterMs ?? 0);
            retry.push(event);
            break;
        }
      });
      const sealIds = batch.seal === undefined ? undefined : retry.map((e) => e.entryId);
      const stillOurs = await this.#settleUntilDone(done, batch.seal, sealIds, signal);
      this.#release(pending.filter((_, i) => (verdicts[i] as Verdict).kind !== 'retry'));
      count(metrics, sink.name, verdicts);
      if (retry.length < pending.length) metrics.sinkLastSuccess.set(labels, nowMs / 1000);
      if (retry.length === 0 || !stillOurs) {
        // Not ours any more: the replica that recovered the seal re-sends the same batch, which the
        // sink answers as already there; a second, differently cut copy from here would not be.
        if (retry.length > 0) {
          const orphans = await this.#letGo(retry);
          if (orphans < retry.length) {
            log.warn(
              { events: retry.length - orphans, firstEventId: retry[0]?.id },
              `sink "${sink.name}": another replica took this batch over while this one was presumed dead; leaving it to it`,
            );
          }
          // Whatever of it is still pending here (a seal lost to a Redis restart) is read again.
          this.#scanPending = true;
        }
        lane.streak = 0;
        this.#reportStreak();
        return;
      }
      pending = retry;
      lane.streak++;
      this.#reportStreak();
      const reasons = [
        ...new Set(verdicts.filter((v) => v.kind === 'retry').map((v) => (v as { reason: string }).reason)),
      ];
      const waitMs = Math.max(retryAfterMs, backoffDelayMs(attempt, this.#o.retry));
      const logAt = lane.streak >= 5 ? 'error' : 'warn';
      log[logAt](
        {
          events: retry.length,
          firstEventId: retry[0]?.id,
          attempt: attempt + 1,
          waitMs,
          reasons: reasons.slice(0, 3),
        },
        `sink "${sink.name}": ${retry.length} events to retry in ${waitMs} ms (${reasons[0]})`,
      );
      await sleep(waitMs, signal);
    }
  }

  #reportStreak(): void {
    const worst = Math.max(...this.#lanes.map((l) => l.streak));
    this.#o.metrics.sinkRetryStreak.set({ sink: this.#o.sink.name }, worst);
  }

  /** A sink that throws has failed the whole batch transiently: every event is retried. */
  async #send(batch: OutboxEvent[], signal: AbortSignal): Promise<readonly Verdict[]> {
    const { sink, metrics } = this.#o;
    const timer = metrics.sinkSendSeconds.startTimer({ sink: sink.name });
    try {
      const verdicts = await sink.send(batch, signal);
      if (verdicts.length !== batch.length) {
        throw new Error(
          `sink "${sink.name}" returned ${verdicts.length} verdicts for ${batch.length} events`,
        );
      }
      return verdicts;
    } catch (error) {
      if (signal.aborted) throw error;
      metrics.sinkFailures.inc({ sink: sink.name });
      const reason = error instanceof Error ? error.message : String(error);
      return batch.map(() => ({ kind: 'retry', reason }) as const);
    } finally {
      timer();
    }
  }

  /**
   * The sink has the events; losing the settlement now would only mean sending them again (which
   * idempotent sinks absorb), so keep trying through a Redis outage rather than re-sending.
   */
  async #settleUntilDone(
    items: readonly Settlement[],
    seal: string | undefined,
    sealIds: readonly string[] | undefined,
    signal: AbortSignal,
  ): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#settle(items, seal, sealIds);
      } catch (error) {
        if (signal.aborted) throw error;
        const waitMs = backoffDelayMs(attempt, { initialMs: 200, maxMs: 5_000 });
        this.#o.log.warn({ err: error, waitMs }, `sink "${this.#o.sink.name}": cannot settle a batch yet`);
        await sleep(waitMs, signal);
      }
    }
  }

  /**
   * Settles entries and, for a sealed batch, shrinks its seal to `sealIds` (deleted when empty).
   * Returns whether the batch is still this consumer's.
   */
  async #settle(
    items: readonly Settlement[],
    seal: string | undefined,
    sealIds: readonly string[] | undefined,
  ): Promise<boolean> {
    if (items.length === 0 && seal === undefined) return true;
    const sealArg = seal === undefined ? '-' : sealIds?.length ? JSON.stringify(sealIds) : '';
    const args: Array<string | number> = [DELIVERY_GROUP, Date.now(), seal ?? '', sealArg, this.consumer];
    // A sink's reason may quote its answer, which may echo our credential: redacted before Redis has it.
    for (const [id, action, reason] of items) args.push(id, action, redactSecrets(reason));
    const mine = await SETTLE.run(
      this.#ctl,
      [this.#stream, this.#o.keys.deadLetter(this.#o.sink.name), this.#sealKey],
      args,
    );
    return mine === 1;
  }

  // ---- recovery ------------------------------------------------------------------------------------

  /** Claims the pending entries of consumers whose heartbeat expired (a crashed or killed process). */
  async #reclaimIfDue(): Promise<void> {
    const now = Date.now();
    if (now - this.#lastReclaimMs < this.#o.consumerTimeoutMs / 2) return;
    this.#lastReclaimMs = now;
    const { keys, sink } = this.#o;
    const redis = this.#ctl;
    const consumers = (await redis.xinfo('CONSUMERS', this.#stream, DELIVERY_GROUP)) as unknown[][];
    let claimedAny = false;
    for (const info of consumers) {
      const fields = toRecord(info);
      const name = String(fields.name);
      if (name === this.consumer) continue;
      if ((await redis.exists(keys.consumerHeartbeat(sink.name, name))) === 1) continue;
      const pending = Number(fields.pending ?? 0);
      if (pending > 0) {
        const rows = (await redis.xpending(this.#stream, DELIVERY_GROUP, '-', '+', 1000, name)) as Array<
          [string]
        >;
        const ids = rows.map((row) => row[0]);
        const minIdle = Math.min(1_000, Math.floor(this.#o.consumerTimeoutMs / 2));
        const claimed = (await RECLAIM.run(
          redis,
          [this.#stream, this.#sealKey],
          [DELIVERY_GROUP, this.consumer, name, minIdle, ...ids],
        )) as string[];
        if (claimed.length > 0) {
          claimedAny = true;
          this.#o.log.info(
            { from: name, entries: claimed.length },
            `reclaimed ${claimed.length} undelivered events from dead consumer ${name}`,
          );
        }
      } else {
        await FORGET_CONSUMER.run(
          redis,
          [this.#stream, keys.consumerHeartbeat(sink.name, name)],
          [DELIVERY_GROUP, name],
        );
      }
    }
    const requeued = Number(await REQUEUE_ORPHANS.run(redis, [this.#stream], [DELIVERY_GROUP, 200]));
    if (requeued > 0) {
      this.#o.log.warn(
        { entries: requeued },
        `sink "${sink.name}": ${requeued} outbox entries were pending for no consumer (orphaned); queued again`,
      );
    }
    if (claimedAny) {
      if (this.policy.stableBatches) await this.#recoverSeals();
      this.#scanPending = true;
    }
  }

  /** Re-forms the batches a dead consumer had sealed, exactly, and queues them before anything else. */
  async #recoverSeals(): Promise<void> {
    const all = await this.#ctl.hgetall(this.#sealKey);
    for (const [field, value] of Object.entries(all)) {
      let seal: { c: string; ids: string[] };
      try {
        seal = JSON.parse(value) as { c: string; ids: string[] };
      } catch {
        await this.#ctl.hdel(this.#sealKey, field);
        continue;
      }
      if (seal.c !== this.consumer || seal.ids.some((id) => this.#held.has(id))) continue;
      const pipeline = this.#ctl.pipeline();
      for (const id of seal.ids) pipeline.xrange(this.#stream, id, id);
      const rows = (await pipeline.exec()) ?? [];
      const events: OutboxEvent[] = [];
      for (const [error, found] of rows) {
        if (error) throw error;
        const entry = (found as RawEntry[])[0];
        const parsed = entry ? parseEntry(entry) : undefined;
        if (parsed && typeof parsed !== 'string') events.push(parsed);
      }
      if (events.length === 0) {
        await this.#ctl.hdel(this.#sealKey, field);
        continue;
      }
      if (events.length < seal.ids.length) {
        this.#o.log.warn(
          { seal: field, missing: seal.ids.length - events.length },
          `sink "${this.#o.sink.name}": a recovered batch lost entries from the outbox; re-sending the rest`,
        );
      }
      for (const event of events) this.#hold(event);
      const lane = this.#laneFor(events[0] as OutboxEvent);
      lane.sealed.push({ events, seal: field });
      lane.wake?.();
    }
  }
}

/** NOGROUP, or XINFO's "no such key": the outbox stream or its consumer group does not exist. */
function isMissingStream(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return error.message.includes('NOGROUP') || error.message.includes('no such key');
}

function parseEntry([entryId, fields]: RawEntry): OutboxEvent | string {
  if (!fields) return 'entry has no fields (deleted from the stream while pending)';
  const f = toRecord(fields);
  const timeMs = Number(f.t);
  const seenAtMs = Number(f.seen);
  if (typeof f.id !== 'string' || typeof f.line !== 'string' || typeof f.scope !== 'string') {
    return 'entry lacks id, scope or line';
  }
  if (!Number.isFinite(timeMs) || !Number.isFinite(seenAtMs)) return 'entry has a non-numeric time';
  return { entryId, id: f.id, scopeKey: f.scope, timeMs, seenAtMs, line: f.line };
}

function toRecord(flat: readonly unknown[]): Record<string, unknown> {
  const record: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) record[String(flat[i])] = flat[i + 1];
  return record;
}

/** When the entry entered the outbox: the millisecond part of its stream id. */
function entryTimeMs(event: OutboxEvent): number {
  return Number(event.entryId.split('-')[0]);
}

/** The generation marker Redis held when an event was read (see #letGo). */
const readIn = new WeakMap<OutboxEvent, string | null>();

const sizes = new WeakMap<OutboxEvent, number>();
function byteLength(event: OutboxEvent): number {
  let size = sizes.get(event);
  if (size === undefined) {
    size = Buffer.byteLength(event.line, 'utf8');
    sizes.set(event, size);
  }
  return size;
}

/** FNV-1a: a stable, well-spread lane choice for a partition key. */
function hashString(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

function count(metrics: Metrics, sink: string, verdicts: readonly Verdict[]): void {
  const tally = { delivered: 0, duplicate: 0, retried: 0, dead_lettered: 0 };
  for (const v of verdicts) {
    if (v.kind === 'delivered') tally.delivered++;
    else if (v.kind === 'duplicate') tally.duplicate++;
    else if (v.kind === 'retry') tally.retried++;
    else tally.dead_lettered++;
  }
  for (const [result, n] of Object.entries(tally)) if (n > 0) metrics.sinkEvents.inc({ sink, result }, n);
}
