import type { Command } from 'commander';
import { formatDuration } from '../../config/duration.ts';
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
    .action(async (options: { config?: string; json?: boolean }) => {
      try {
        const target = await openRedisTarget(options.config);
        try {
          const configured = target.config
            ? {
                scopes: target.config.scopes.map((s) => s.key),
                sinks: target.config.sinks.map((s) => s.name),
              }
            : undefined;
          const report = await statusReport(
            target.redis,
            new RedisKeys(target.settings.redis.prefix),
            configured,
          );
          writeOut(options.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderStatus(report)}\n`);
        } finally {
          await target.close();
        }
      } catch (error) {
        failCommand(error);
      }
    });
}
