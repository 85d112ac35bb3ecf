import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { type BackoffPolicy, backoffDelayMs, sleep } from '../http/retry.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Sink, Verdict } from '../sinks/sink.ts';
import type { OutboxEvent } from './envelope.ts';
import { DELIVERY_GROUP, type RedisKeys } from './keys.ts';
import { LuaScript } from './script.ts';

/**
 * Acknowledges settled entries and removes them from the outbox; rejected ones are first copied to the
 * dead-letter stream with their reason. One atomic step, so an entry is never both gone and not
 * dead-lettered. KEYS: outbox, dead-letter. ARGV: group, now, then (entry id, 'ack'|'dlq', reason)…
 */
const SETTLE = new LuaScript(`
for i = 3, #ARGV, 3 do
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
return #ARGV
`);

export interface DeliveryWorkerOptions {
  readonly sink: Sink;
  /** A connection of its own: XREADGROUP BLOCK holds it while waiting. */
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly instanceId: string;
  readonly batchSize: number;
  readonly retry: BackoffPolicy;
  /** A consumer whose heartbeat is older than this is presumed dead and its entries are reclaimed. */
  readonly consumerTimeoutMs: number;
  readonly blockMs?: number;
  readonly metrics: Metrics;
  readonly log: Logger;
}

type RawEntry = [id: string, fields: string[] | null];

/**
 * Moves one sink's outbox into the sink: read a batch with the consumer group, send it, settle each
 * event by its verdict, and keep retrying what is retryable (with backoff, honouring Retry-After) for as
 * long as it takes, because an audit shipper must not give up on an event. Entries a crashed consumer
 * left pending are reclaimed once its heartbeat has expired.
 */
export class DeliveryWorker {
  readonly consumer: string;
  readonly #o: DeliveryWorkerOptions;
  readonly #stream: string;
  readonly #heartbeatKey: string;
  readonly #stop = new AbortController();
  #loop: Promise<void> | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #lastReclaimMs = 0;

  constructor(options: DeliveryWorkerOptions) {
    this.#o = options;
    // Unique per process run, so a restarted process never mistakes a dead predecessor's entries for its own.
    this.consumer = `${options.instanceId}:${randomUUID().slice(0, 8)}`;
    this.#stream = options.keys.outbox(options.sink.name);
    this.#heartbeatKey = options.keys.consumerHeartbeat(options.sink.name, this.consumer);
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
    this.#loop = this.#run();
  }

  /**
   * Stops reading, lets an in-flight send finish (or abandons it at the deadline: its entries stay
   * pending and are reclaimed), and drops the heartbeat so other replicas take over at once.
   */
  async stop(deadlineMs: number): Promise<void> {
    this.#stop.abort(new Error('shutdown'));
    clearInterval(this.#heartbeat);
    const timeout = new Promise<'timeout'>((resolve) =>
      setTimeout(() => resolve('timeout'), deadlineMs).unref(),
    );
    const ended = await Promise.race([this.#loop?.then(() => 'done' as const), timeout]);
    if (ended === 'timeout')
      this.#o.log.warn('delivery did not finish before the deadline; its batch stays pending');
    // Queued behind a blocking read at most `blockMs`; then other replicas may reclaim at once.
    await this.#o.redis.del(this.#heartbeatKey).catch(() => undefined);
    this.#o.redis.disconnect();
  }

  async #beat(): Promise<void> {
    await this.#o.redis.set(this.#heartbeatKey, this.consumer, 'PX', this.#o.consumerTimeoutMs);
  }

  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    let failures = 0;
    while (!signal.aborted) {
      try {
        await this.#reclaimIfDue();
        // Entries already ours (reclaimed, or left by an interrupted batch) go first.
        const mine = await this.#read('0', false);
        const entries = mine.length > 0 ? mine : await this.#read('>', true);
        if (entries.length > 0) await this.#deliver(entries, signal);
        failures = 0;
      } catch (error) {
        if (signal.aborted) break;
        const waitMs = backoffDelayMs(failures++, { initialMs: 500, maxMs: 30_000 });
        this.#o.log.error(
          { err: error, waitMs },
          `delivery to sink "${this.#o.sink.name}" interrupted; resuming`,
        );
        await sleep(waitMs, signal).catch(() => undefined);
      }
    }
  }

  async #read(from: '0' | '>', block: boolean): Promise<RawEntry[]> {
    const { redis, batchSize, blockMs } = this.#o;
    // The typed method, not redis.call: it returns the same shape under RESP2 and RESP3.
    const reply = block
      ? await redis.xreadgroup(
          'GROUP',
          DELIVERY_GROUP,
          this.consumer,
          'COUNT',
          batchSize,
          'BLOCK',
          blockMs ?? 1_000,
          'STREAMS',
          this.#stream,
          from,
        )
      : await redis.xreadgroup(
          'GROUP',
          DELIVERY_GROUP,
          this.consumer,
          'COUNT',
          batchSize,
          'STREAMS',
          this.#stream,
          from,
        );
    return ((reply as Array<[string, RawEntry[]]> | null)?.[0]?.[1] ?? []) as RawEntry[];
  }

  async #deliver(entries: RawEntry[], signal: AbortSignal): Promise<void> {
    const { sink, metrics, log } = this.#o;
    const settle: Array<[string, 'ack' | 'dlq', string]> = [];
    let pending: OutboxEvent[] = [];
    for (const entry of entries) {
      const parsed = parseEntry(entry);
      if (typeof parsed === 'string') {
        // Not an event this shipper wrote (or emptied by hand): kept in the dead-letter stream, not dropped.
        log.error({ entry: entry[0] }, `outbox of sink "${sink.name}": ${parsed}; dead-lettered`);
        settle.push([entry[0], 'dlq', parsed]);
      } else pending.push(parsed);
    }
    await this.#settle(settle);

    for (let attempt = 0; pending.length > 0; attempt++) {
      const verdicts = await this.#send(pending, signal);
      const retry: OutboxEvent[] = [];
      const done: Array<[string, 'ack' | 'dlq', string]> = [];
      let retryAfterMs = 0;
      const nowMs = Date.now();
      pending.forEach((event, i) => {
        const verdict = verdicts[i] as Verdict;
        switch (verdict.kind) {
          case 'delivered':
            metrics.freshnessSeconds.observe({ sink: sink.name }, Math.max(0, (nowMs - event.timeMs) / 1000));
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
      await this.#settle(done);
      count(metrics, sink.name, verdicts);
      if (retry.length === 0) return;
      pending = retry;
      const reasons = new Set(
        verdicts.filter((v) => v.kind === 'retry').map((v) => (v as { reason: string }).reason),
      );
      const waitMs = Math.max(retryAfterMs, backoffDelayMs(attempt, this.#o.retry));
      log.warn(
        {
          sink: sink.name,
          events: retry.length,
          attempt: attempt + 1,
          waitMs,
          reasons: [...reasons].slice(0, 3),
        },
        `sink "${sink.name}": ${retry.length} events to retry in ${waitMs} ms (${[...reasons][0]})`,
      );
      await sleep(waitMs, signal);
    }
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

  async #settle(items: ReadonlyArray<[string, 'ack' | 'dlq', string]>): Promise<void> {
    if (items.length === 0) return;
    const args: Array<string | number> = [DELIVERY_GROUP, Date.now()];
    for (const [id, action, reason] of items) args.push(id, action, reason);
    await SETTLE.run(this.#o.redis, [this.#stream, this.#o.keys.deadLetter(this.#o.sink.name)], args);
  }

  /** Claims the pending entries of consumers whose heartbeat expired (a crashed or killed process). */
  async #reclaimIfDue(): Promise<void> {
    const now = Date.now();
    if (now - this.#lastReclaimMs < this.#o.consumerTimeoutMs / 2) return;
    this.#lastReclaimMs = now;
    const { redis, keys, sink } = this.#o;
    const consumers = (await redis.xinfo('CONSUMERS', this.#stream, DELIVERY_GROUP)) as unknown[][];
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
        if (ids.length > 0) {
          const minIdle = Math.min(1_000, Math.floor(this.#o.consumerTimeoutMs / 2));
          await redis.xclaim(this.#stream, DELIVERY_GROUP, this.consumer, minIdle, ...ids, 'JUSTID');
          this.#o.log.info(
            { sink: sink.name, from: name, entries: ids.length },
            `reclaimed ${ids.length} undelivered events from dead consumer ${name}`,
          );
        }
      } else {
        await redis.xgroup('DELCONSUMER', this.#stream, DELIVERY_GROUP, name);
      }
    }
  }
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
