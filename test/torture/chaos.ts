/**
 * Runs a fault schedule against a world: each action at its offset from the start of the fault phase,
 * episodes undone when their time is up, and everything undone at the end (`calm`). What ran, and
 * when, is recorded for the report and for a failing run's message.
 */
import type { Fault, MalformedKind } from '../../src/simulator/index.ts';
import type { SinkFault } from '../support/sink-faults.ts';
import {
  describeAction,
  type FaultAction,
  faultKind,
  type ProviderEpisode,
  type ScheduledFault,
  type ServerSink,
  type SinkEpisode,
} from './schedule.ts';
import type { World } from './world.ts';

export interface RanFault {
  /** Offset from the start of the fault phase when it was applied. */
  readonly atMs: number;
  readonly what: string;
  /** What happened that the schedule could not know (a replica already down, …). */
  note?: string;
}

/**
 * Body-level defects a provider glitch may cause. Item-level defects (an item with mistyped fields) are
 * left out of the random draws: the sources' documented rule ships an item the API sent broken in three
 * polls as sent, with anomalies, and random draws may repeat; a single one per episode is queued instead.
 */
const BODY_DEFECTS: readonly MalformedKind[] = [
  'invalid-json',
  'html',
  'missing-items',
  'items-not-array',
  'cursor-wrong-type',
];

export class Chaos {
  readonly #world: World;
  readonly #schedule: readonly ScheduledFault[];
  readonly ran: RanFault[] = [];
  readonly counts = new Map<string, number>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #pending = new Set<Promise<void>>();
  #startedAt = 0;
  #stopped = false;
  /** Sink servers stopped by a `down` episode (restarted by its end or by `calm`). */
  readonly #stoppedSinks = new Set<ServerSink>();
  /** Longest Redis pause and outage, for the report. */
  redisOutageMs = 0;

  constructor(world: World, schedule: readonly ScheduledFault[]) {
    this.#world = world;
    this.#schedule = schedule;
  }

  /** Applies the schedule; resolves when its last action has been applied (episodes may still run). */
  async run(): Promise<void> {
    this.#startedAt = Date.now();
    for (const item of this.#schedule) {
      const waitMs = this.#startedAt + item.atMs - Date.now();
      if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
      if (this.#stopped) return;
      this.#track(this.#apply(item.action));
    }
  }

  /** Ends every fault: provider and sinks healthy, Redis running, every replica up. */
  async calm(): Promise<void> {
    this.#stopped = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    await Promise.allSettled([...this.#pending]);
    const w = this.#world;
    this.#providerCalm();
    for (const sink of ['loki', 'es', 's3'] as const) await this.#sinkCalm(sink);
    const pid = w.redis.server.pid;
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // not running: restarted below
      }
    }
    if ((await w.redis.client.ping().catch(() => 'down')) !== 'PONG') await w.redis.server.restart();
    for (const outage of w.redisOutages) outage.toMs ??= Date.now();
    w.ensureAllRunning();
  }

  #track(work: Promise<void>): void {
    const tracked = work.catch((error: unknown) => {
      this.ran.push({ atMs: this.#offset(), what: `fault action failed: ${String(error)}` });
    });
    this.#pending.add(tracked);
    void tracked.finally(() => this.#pending.delete(tracked));
  }

  #later(ms: number, undo: () => Promise<void> | void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (!this.#stopped) this.#track(Promise.resolve().then(undo));
    }, ms);
    this.#timers.add(timer);
  }

  #offset(): number {
    return Date.now() - this.#startedAt;
  }

  async #apply(action: FaultAction): Promise<void> {
    const w = this.#world;
    const record: RanFault = { atMs: this.#offset(), what: describeAction(action) };
    this.ran.push(record);
    const kind = faultKind(action);
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
    switch (action.kind) {
      case 'kill': {
        const killed = await w.killReplica(action.slot);
        if (!killed) record.note = 'was not running';
        w.restartLater(action.slot, action.downMs);
        return;
      }
      case 'kill-all': {
        const killed = await Promise.all(w.replicas.map((r) => w.killReplica(r.slot)));
        record.note = `${killed.filter(Boolean).length} were running`;
        for (const replica of w.replicas) w.restartLater(replica.slot, action.downMs);
        return;
      }
      case 'redis-restart': {
        const outage: { fromMs: number; toMs?: number } = { fromMs: Date.now() };
        w.redisOutages.push(outage);
        await w.redis.server.kill();
        await new Promise((r) => setTimeout(r, action.downMs));
        await w.redis.server.restart();
        outage.toMs = Date.now();
        this.redisOutageMs = Math.max(this.redisOutageMs, outage.toMs - outage.fromMs);
        return;
      }
      case 'redis-pause': {
        const pid = w.redis.server.pid;
        if (pid === undefined) {
          record.note = 'no Redis process';
          return;
        }
        const outage: { fromMs: number; toMs?: number } = { fromMs: Date.now() };
        w.redisOutages.push(outage);
        process.kill(pid, 'SIGSTOP');
        await new Promise((r) => setTimeout(r, action.pauseMs));
        process.kill(pid, 'SIGCONT');
        outage.toMs = Date.now();
        this.redisOutageMs = Math.max(this.redisOutageMs, action.pauseMs);
        return;
      }
      case 'provider':
        this.#providerEpisode(action.episode, action.durationMs);
        this.#later(action.durationMs, () => this.#providerCalm());
        return;
      case 'sink':
        await this.#sinkEpisode(action.sink, action.episode);
        this.#later(action.durationMs, () => this.#sinkCalm(action.sink));
        return;
    }
  }

  #providerEpisode(episode: ProviderEpisode, durationMs: number): void {
    const { sim, proxy } = this.#world;
    switch (episode.type) {
      case 'rate-limit':
        sim.retryAfterHeader = episode.retryAfter;
        sim.budget.set({ capacity: episode.capacity, refillPerSecond: episode.refillPerSecond });
        return;
      case 'server-errors':
        sim.faults.set({ serverErrorRate: episode.rate });
        return;
      case 'timeouts':
        sim.faults.set({ slowRate: episode.rate, slowDelayMs: episode.delayMs });
        return;
      case 'resets':
        sim.faults.set({ resetRate: episode.rate });
        return;
      case 'truncated':
        proxy.setTruncateRate(episode.rate);
        return;
      case 'malformed': {
        const single: Fault = { type: 'malformed', kind: 'item-wrong-types' };
        sim.faults.enqueue(single);
        sim.faults.set({ malformedRate: episode.rate, malformedKinds: BODY_DEFECTS });
        return;
      }
      case 'repeat-cursor':
        sim.faults.set({ repeatCursorRate: episode.rate });
        return;
      case 'maintenance':
        sim.cloudscale.setMaintenance(sim.clock.simNow() + durationMs, episode.retryAfterSec);
        return;
      case 'cursor-rejected':
        sim.cloudscale.rejectCursors(episode.count, episode.status);
        return;
    }
  }

  #providerCalm(): void {
    const { sim, proxy } = this.#world;
    sim.faults.clear();
    sim.budget.set(undefined);
    sim.retryAfterHeader = true;
    sim.cloudscale.setMaintenance(undefined);
    sim.cloudscale.rejectCursors(0);
    proxy.clear();
  }

  async #sinkEpisode(sink: ServerSink, episode: SinkEpisode): Promise<void> {
    const server = this.#server(sink);
    const rates = (faults: SinkFault[], rate: number) => server.faults.set({ rate, faults });
    switch (episode.type) {
      case 'down':
        this.#stoppedSinks.add(sink);
        await server.stop();
        return;
      case 'unavailable':
        server.setDown(true);
        return;
      case 'throttled':
        rates(
          [{ kind: 'status', status: sink === 's3' ? 503 : 429, retryAfterSec: episode.retryAfterSec }],
          episode.rate,
        );
        return;
      case 'server-errors':
        rates(
          (sink === 's3' ? [500, 503] : [500, 502, 503, 504]).map((status) => ({ kind: 'status', status })),
          episode.rate,
        );
        return;
      case 'slow':
        rates([{ kind: 'slow', delayMs: episode.delayMs }], episode.rate);
        return;
      case 'lost-answers':
        rates([{ kind: 'lost-answer' }], episode.rate);
        return;
      case 'partial':
        rates([{ kind: 'partial' }], episode.rate);
        return;
    }
  }

  async #sinkCalm(sink: ServerSink): Promise<void> {
    const server = this.#server(sink);
    server.faults.clear();
    server.setDown(false);
    if (this.#stoppedSinks.delete(sink)) await server.start(Number(new URL(server.url).port));
  }

  #server(sink: ServerSink) {
    const w = this.#world;
    return sink === 'loki' ? w.loki : sink === 'es' ? w.es : w.s3;
  }

  /** A copy of what ran, one line each, for a failing run's message. */
  log(): string {
    return this.ran
      .map((r) => `  +${(r.atMs / 1000).toFixed(1)}s ${r.what}${r.note ? ` (${r.note})` : ''}`)
      .join('\n');
  }
}
