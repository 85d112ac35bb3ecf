/**
 * A Telemetry Router that keeps pushing: every `intervalMs` it collects the audit events of its scopes
 * that became visible since the last round and pushes them with a RouterPusher, batch by batch, each
 * event once (apart from the pusher's own redeliveries). For `auditlog-shipper simulate --push` and for
 * receiver tests that run for a while (replicas killed, Redis restarted): the cumulative report is the
 * ground truth of what was acknowledged, redelivered and dropped.
 */
import type { ScopeRef } from '../../pipeline/envelope.ts';
import type { SimClock } from '../clock.ts';
import type { Truth } from '../truth.ts';
import { auditLogRecord } from './audit-records.ts';
import type { PushReport, RouterPusher } from './router-pusher.ts';

export interface RouterPushLoopOptions {
  readonly truth: Truth;
  readonly clock: SimClock;
  readonly pusher: RouterPusher;
  /** The scopes whose events this router receives (read every round). */
  readonly scopes: () => readonly ScopeRef[];
  /** Events with an event time before this are never pushed (default: when the loop starts). */
  readonly fromMs?: number;
  /** Between rounds (default 5 s). */
  readonly intervalMs?: number;
  /** How far back each round looks for events that became visible late (default 15 min). */
  readonly lookbackMs?: number;
  /** Called after each round with the cumulative report. */
  readonly onRound?: (report: PushReport) => void;
}

export class RouterPushLoop {
  readonly #o: RouterPushLoopOptions;
  readonly #fromMs: number;
  /** Ids already pushed, with their event time, forgotten once older than the lookback. */
  readonly #pushed = new Map<string, number>();
  #report: PushReport = {
    batches: 0,
    attempts: 0,
    statuses: {},
    acknowledged: [],
    redelivered: 0,
    rejected: 0,
    dropped: [],
    delaysMs: [],
  };
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(options: RouterPushLoopOptions) {
    this.#o = options;
    this.#fromMs = options.fromMs ?? options.clock.simNow();
  }

  start(): void {
    this.#timer = setInterval(() => void this.round(), this.#o.intervalMs ?? 5_000);
    this.#timer.unref();
    void this.round();
  }

  /** Stops; a batch still being retried is abandoned (neither acknowledged nor dropped). */
  async stop(): Promise<PushReport> {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#o.pusher.close();
    await this.#running;
    return this.#report;
  }

  get report(): PushReport {
    return this.#report;
  }

  /** One round now (concurrent calls share it). */
  round(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    this.#running ??= this.#round().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #round(): Promise<void> {
    const now = this.#o.clock.simNow();
    const since = Math.max(this.#fromMs, now - (this.#o.lookbackMs ?? 15 * 60_000));
    const fresh = this.#o
      .scopes()
      .flatMap((scope) => this.#o.truth.events({ scope, fromMs: since, toMs: now, visibleBy: now }))
      .filter((event) => !this.#pushed.has(event.id))
      .sort((a, b) => a.visibleAtMs - b.visibleAtMs || a.id.localeCompare(b.id));
    for (const event of fresh) this.#pushed.set(event.id, event.eventTimeMs);
    for (const [id, timeMs] of this.#pushed) if (timeMs < since) this.#pushed.delete(id);
    if (fresh.length === 0) return;
    const round = await this.#o.pusher.push(fresh.map(auditLogRecord));
    this.#report = merge(this.#report, round);
    this.#o.onRound?.(this.#report);
  }
}

function merge(a: PushReport, b: PushReport): PushReport {
  const statuses: Record<string, number> = { ...a.statuses };
  for (const [k, n] of Object.entries(b.statuses)) statuses[k] = (statuses[k] ?? 0) + n;
  return {
    batches: a.batches + b.batches,
    attempts: a.attempts + b.attempts,
    statuses,
    acknowledged: [...a.acknowledged, ...b.acknowledged],
    redelivered: a.redelivered + b.redelivered,
    rejected: a.rejected + b.rejected,
    dropped: [...a.dropped, ...b.dropped],
    delaysMs: [...a.delaysMs, ...b.delaysMs].slice(-1_000),
  };
}
