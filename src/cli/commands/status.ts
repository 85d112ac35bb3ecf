import type { Command } from 'commander';
import { formatDuration, parseDuration } from '../../config/duration.ts';
import { sleep } from '../../http/retry.ts';
import { RedisKeys } from '../../pipeline/keys.ts';
import { OutboxMonitor } from '../../pipeline/outbox.ts';
import { type PathComparison, PathRecorder } from '../../pipeline/paths.ts';
import { ScopeStateStore } from '../../pipeline/scope-state.ts';
import { keysWithPrefix, type RedisClient } from '../../redis/client.ts';
import { failCommand, writeOut } from '../command-io.ts';
import { openRedisTarget } from '../redis-target.ts';
import { scopeOrigins } from '../scope-origins.ts';

export interface ScopeRow {
  readonly scope: string;
  /** `config`, `discovered, <state>`, null for leftovers of an older config, `unknown` without a config. */
  readonly origin: string | null;
  readonly lastPoll: string | null;
  readonly outcome: string | null;
  readonly lagSeconds: number | null;
  readonly failuresInARow: number;
  readonly lastError: string | null;
  /** Events committed for the scope since its state was created (the watch view's rate). */
  readonly committed: number;
}

export interface SinkRow {
  readonly sink: string;
  readonly depth: number;
  readonly oldestAgeSeconds: number;
  readonly deadLettered: number;
}

export interface StatusReport {
  readonly at: string;
  readonly scopes: readonly ScopeRow[];
  readonly sinks: readonly SinkRow[];
  /** Scopes the push path (STACKIT Telemetry Router) has delivered to: what each path saw. */
  readonly paths: readonly PathComparison[];
}

/**
 * What an operator checks first: per scope, when it was last polled, how far behind it is and whether
 * it keeps failing; per sink, how much waits and for how long, and how much was dead-lettered.
 */
export async function statusReport(
  redis: RedisClient,
  keys: RedisKeys,
  configured: { scopes: readonly string[]; sinks: readonly string[] } | undefined,
  nowMs: number = Date.now(),
): Promise<StatusReport> {
  const store = new ScopeStateStore(redis, keys);
  const outbox = new OutboxMonitor(redis, keys);
  const origins = await scopeOrigins(redis, keys, configured?.scopes ?? []);
  const scopeKeys = [...new Set([...origins.keys(), ...(await store.knownScopes())])].sort();
  const scopes = await Promise.all(
    scopeKeys.map(async (scope): Promise<ScopeRow> => {
      const [stored, status] = await Promise.all([store.checkpoint(scope), store.status(scope)]);
      const watermark = stored?.checkpoint.watermarkMs;
      return {
        scope,
        origin: origins.get(scope) ?? (configured ? null : 'unknown'),
        lastPoll: status.lastPoll ? new Date(status.lastPoll.endedAtMs).toISOString() : null,
        outcome: status.lastPoll?.outcome ?? null,
        lagSeconds: watermark === undefined ? null : Math.max(0, Math.round((nowMs - watermark) / 1000)),
        failuresInARow: status.consecutiveFailures,
        committed: stored?.committed ?? 0,
        lastError: status.lastPoll?.error
          ? `${status.lastPoll.error.reason}: ${status.lastPoll.error.message}`
          : null,
      };
    }),
  );
  const sinkNames = configured?.sinks ?? (await sinksInRedis(redis, keys));
  const sinks = await Promise.all(
    sinkNames.map(async (sink): Promise<SinkRow> => {
      const depth = await outbox.depth(sink, nowMs);
      return {
        sink,
        depth: depth.length,
        oldestAgeSeconds: depth.length === 0 ? 0 : Math.round(depth.oldestAgeMs / 1000),
        deadLettered: depth.deadLettered,
      };
    }),
  );
  const recorder = new PathRecorder(redis, keys);
  const paths = await Promise.all(
    (await recorder.pushedScopes()).map((scope) => recorder.compare(scope, nowMs)),
  );
  return { at: new Date(nowMs).toISOString(), scopes, sinks, paths };
}

async function sinksInRedis(redis: RedisClient, keys: RedisKeys): Promise<string[]> {
  const prefix = keys.outbox('');
  return (await keysWithPrefix(redis, prefix)).map((key) => key.slice(prefix.length));
}

/** Renders the report as two aligned tables for a terminal. */
export function renderStatus(report: StatusReport): string {
  const scopeRows = report.scopes.map((r) => [
    `${r.scope}${r.origin === null ? ' (not in config)' : r.origin === 'config' || r.origin === 'unknown' ? '' : ` (${r.origin})`}`,
    r.lastPoll ? `${r.lastPoll.slice(0, 19).replace('T', ' ')} ${r.outcome}` : 'never',
    r.lagSeconds === null ? '-' : formatDuration(r.lagSeconds * 1000),
    String(r.failuresInARow),
    r.lastError ? truncate(r.lastError, 80) : '',
  ]);
  const sinkRows = report.sinks.map((r) => [
    r.sink,
    String(r.depth),
    r.depth === 0 ? '-' : formatDuration(r.oldestAgeSeconds * 1000),
    String(r.deadLettered),
  ]);
  const sections = [
    table(['SCOPE', 'LAST POLL', 'LAG', 'FAILING', 'LAST ERROR'], scopeRows, 'no scopes'),
    '',
    table(['SINK', 'WAITING', 'OLDEST', 'DEAD-LETTERED'], sinkRows, 'no sinks'),
  ];
  if (report.paths.length > 0) {
    const pathRows = report.paths.map((p) => [
      p.scope,
      p.fromMs >= p.toMs ? 'not yet' : `${p.polled}`,
      p.fromMs >= p.toMs ? '-' : `${p.pushed}`,
      p.fromMs >= p.toMs ? '-' : `${p.both}`,
      p.fromMs >= p.toMs
        ? '-'
        : `${p.pollOnly}${p.pollOnlySample.length ? ` (${p.pollOnlySample.join(', ')})` : ''}`,
      p.fromMs >= p.toMs
        ? '-'
        : `${p.pushOnly}${p.pushOnlySample.length ? ` (${p.pushOnlySample.join(', ')})` : ''}`,
    ]);
    sections.push(
      '',
      'POLL → PUSH MIGRATION (events both paths have covered: the last day, older than 15 min)',
      table(['SCOPE', 'POLLED', 'PUSHED', 'BOTH', 'POLL ONLY', 'PUSH ONLY'], pathRows, 'none'),
    );
  }
  return sections.join('\n');
}

/**
 * `status --watch`: the report redrawn every interval, like `vector top`, with what changed since the
 * previous frame: events committed per second per scope, and whether each sink's backlog grows or
 * shrinks. Pure, so frames can be rendered from injected reports.
 */
export class StatusWatch {
  #previous: { report: StatusReport; atMs: number } | undefined;

  frame(report: StatusReport, atMs: number, intervalMs: number): string {
    const previous = this.#previous;
    this.#previous = { report, atMs };
    const seconds = previous === undefined ? 0 : (atMs - previous.atMs) / 1000;
    /** Change per second since the previous frame; '-' on the first frame or for a new row. */
    const rate = (now: number, before: number | undefined, signed: boolean): string => {
      if (before === undefined || seconds <= 0) return '-';
      const perSecond = (now - before) / seconds;
      if (perSecond === 0) return '0';
      const text = perSecond.toFixed(Math.abs(perSecond) < 10 ? 1 : 0);
      return signed && perSecond > 0 ? `+${text}/s` : signed ? `${text}/s` : text;
    };
    const before = new Map(previous?.report.scopes.map((r) => [r.scope, r.committed]));
    const sinksBefore = new Map(previous?.report.sinks.map((r) => [r.sink, r.depth]));
    const scopeRows = report.scopes.map((r) => [
      r.scope,
      r.lastPoll ? `${r.lastPoll.slice(11, 19)} ${r.outcome}` : 'never',
      r.lagSeconds === null ? '-' : formatDuration(r.lagSeconds * 1000),
      rate(r.committed, before.get(r.scope), false),
      String(r.failuresInARow),
      r.lastError ? truncate(r.lastError, 60) : '',
    ]);
    const sinkRows = report.sinks.map((r) => [
      r.sink,
      String(r.depth),
      rate(r.depth, sinksBefore.get(r.sink), true),
      r.depth === 0 ? '-' : formatDuration(r.oldestAgeSeconds * 1000),
      String(r.deadLettered),
    ]);
    const failing = report.scopes.filter((r) => r.failuresInARow > 0).length;
    const waiting = report.sinks.reduce((sum, r) => sum + r.depth, 0);
    return [
      `auditlog-shipper status  ${report.at.slice(0, 19).replace('T', ' ')} UTC  every ${formatDuration(intervalMs)}  (Ctrl-C quits)`,
      `${report.scopes.length} scopes (${failing} failing)  ${report.sinks.length} sinks  ${waiting} events waiting`,
      '',
      table(['SCOPE', 'LAST POLL', 'LAG', 'EVENTS/S', 'FAILING', 'LAST ERROR'], scopeRows, 'no scopes'),
      '',
      table(['SINK', 'WAITING', 'TREND', 'OLDEST', 'DEAD-LETTERED'], sinkRows, 'no sinks'),
      '',
    ].join('\n');
  }
}

function table(head: string[], rows: string[][], empty: string): string {
  if (rows.length === 0) return `${head[0]}\n  (${empty})`;
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function register(program: Command): void {
  program
    .command('status')
    .description(
      'Per scope: last poll, lag, failures; per sink: waiting events, oldest, dead-lettered; with a push provider, what the poll and push paths each saw.',
    )
    .option(
      '-c, --config <file>',
      'the config file (Redis URL, prefix, configured scopes and sinks); default: REDIS_URL, else the embedded Redis',
    )
    .option('--json', 'machine-readable output')
    .option('-w, --watch', 'a live view, redrawn every --interval, with event rates and backlog trends')
    .option('--interval <duration>', 'refresh interval of --watch', '2s')
    .action(async (options: { config?: string; json?: boolean; watch?: boolean; interval: string }) => {
      try {
        const intervalMs = parseDuration(options.interval);
        if (intervalMs === undefined || intervalMs < 200) {
          throw new Error(`--interval ${options.interval}: a duration of at least 200ms, such as 2s`);
        }
        const target = await openRedisTarget(options.config);
        try {
          const configured = target.config
            ? {
                scopes: target.config.scopes.map((s) => s.key),
                sinks: target.config.sinks.map((s) => s.name),
              }
            : undefined;
          const keys = new RedisKeys(target.settings.redis.prefix);
          if (options.watch) {
            await watchStatus(() => statusReport(target.redis, keys, configured), intervalMs);
            return;
          }
          const report = await statusReport(target.redis, keys, configured);
          writeOut(
            options.json
              ? `${JSON.stringify(report, null, 2)}
`
              : `${renderStatus(report)}
`,
          );
        } finally {
          await target.close();
        }
      } catch (error) {
        failCommand(error);
      }
    });
}

/** Redraws until Ctrl-C; on a terminal in place, elsewhere one frame after another. */
async function watchStatus(read: () => Promise<StatusReport>, intervalMs: number): Promise<void> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const view = new StatusWatch();
  const tty = process.stdout.isTTY === true;
  try {
    while (!stop.signal.aborted) {
      const report = await read();
      const frame = view.frame(report, Date.parse(report.at), intervalMs);
      writeOut(tty ? `\x1b[H\x1b[2J${frame}` : `${frame}\n`);
      await sleep(intervalMs, stop.signal).catch(() => undefined);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
