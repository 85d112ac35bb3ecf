import type { Command } from 'commander';
import { pino } from 'pino';
import { formatDuration, parseDuration } from '../../config/duration.ts';
import { redactSecrets } from '../../config/redact.ts';
import type { ScopeSpec, ShipperConfig } from '../../config/types.ts';
import { sleep } from '../../http/retry.ts';
import { describeProgress } from '../../pipeline/backfill.ts';
import { type BackfillRun, BackfillStore, backfillScopeKey } from '../../pipeline/backfill-store.ts';
import { pollScope, ScopeCatalog } from '../../pipeline/discovery-catalog.ts';
import { DiscoveryStore } from '../../pipeline/discovery-store.ts';
import { RedisKeys } from '../../pipeline/keys.ts';
import { ScopeStateStore } from '../../pipeline/scope-state.ts';
import { sourceModules } from '../../sources/registry.ts';
import type { Source } from '../../sources/source.ts';
import { BackfillRate, describeRate, type RateEstimate, StallWatch } from '../backfill-rate.ts';
import { openRedisTarget, type RedisTarget } from '../redis-target.ts';

export interface BackfillOptions {
  readonly config?: string;
  readonly scope?: readonly string[];
  readonly since?: string;
  readonly until?: string;
  readonly detach?: boolean;
  readonly status?: boolean;
}

export interface BackfillIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** Progress bars when true, log lines otherwise. */
  readonly tty: boolean;
  /** Aborts following (Ctrl-C): the backfill goes on in the shipper. */
  readonly signal: AbortSignal;
  readonly now?: () => number;
  /** How often progress is read (default 1 s). */
  readonly refreshMs?: number;
}

interface Followed {
  readonly scope: string;
  /** Done when the scope's runs cover history from here. */
  readonly fromMs: number;
}

/**
 * `auditlog-shipper backfill`: asks the shipper to read history older than what its live polling
 * covers, and follows the progress. The work happens in the running shippers' backfill lane (their own
 * queue and concurrency, behind live polls in the request budget); this command only records the
 * request in Redis and watches, so it can be stopped and started again at will, and a shipper killed
 * mid-way resumes from its checkpoint.
 */
export async function backfill(options: BackfillOptions, io: BackfillIo): Promise<number> {
  if (options.status) return await statusOnly(options, io);
  if (options.config === undefined) {
    io.err('✗ backfill needs the config file (-c): it names the providers and scopes\n');
    return 1;
  }
  const target = await openRedisTarget(options.config);
  const config = target.config as ShipperConfig;
  const sources = createSources(config);
  try {
    const keys = new RedisKeys(target.settings.redis.prefix);
    const ctx: Context = {
      target,
      config,
      sources,
      store: new BackfillStore(target.redis, keys),
      state: new ScopeStateStore(target.redis, keys),
      catalog: new ScopeCatalog(config.scopes, sources, new DiscoveryStore(target.redis, keys)),
      discovery: new DiscoveryStore(target.redis, keys),
      now: io.now ?? Date.now,
    };
    const followed = await request(ctx, options, io);
    if (followed === undefined) return 1;
    if (options.detach || followed.length === 0) {
      if (followed.length > 0) {
        io.out(
          'the shipper reads it in its backfill lane; follow with: auditlog-shipper backfill --status\n',
        );
      }
      return 0;
    }
    return await follow(ctx, followed, io);
  } catch (error) {
    io.err(`✗ ${(error as Error).message}\n`);
    return 1;
  } finally {
    await Promise.allSettled([...sources.values()].map((s) => s.close()));
    await target.close();
  }
}

interface Context {
  readonly target: RedisTarget;
  readonly config: ShipperConfig;
  readonly sources: ReadonlyMap<string, Source>;
  readonly store: BackfillStore;
  readonly state: ScopeStateStore;
  readonly catalog: ScopeCatalog;
  readonly discovery: DiscoveryStore;
  readonly now: () => number;
}

/** Sources for their history arithmetic only; nothing here makes a provider request. */
function createSources(config: ShipperConfig): Map<string, Source> {
  const log = pino({ level: 'silent' });
  const sources = new Map<string, Source>();
  for (const provider of config.providers) {
    const module = sourceModules.get(provider.type);
    if (module)
      sources.set(provider.name, module.create(provider, { log, instanceId: 'cli', onRequest: () => {} }));
  }
  return sources;
}

/** `90d` (before now) or an RFC 3339 time. */
function parseTime(text: string, nowMs: number, what: string): number {
  const duration = parseDuration(text);
  if (duration !== undefined) return nowMs - duration;
  const at = Date.parse(text);
  if (/^\d{4}-\d{2}-\d{2}/.test(text) && Number.isFinite(at)) return at;
  throw new Error(`${what} must be a duration before now (90d, 36h) or an RFC 3339 time, got "${text}"`);
}

async function resolveScope(ctx: Context, name: string): Promise<ScopeSpec> {
  const discovered = await ctx.discovery.entries();
  const candidates = new Set([...ctx.config.scopes.map((s) => s.key), ...discovered.keys()]);
  let key: string | undefined = candidates.has(name) ? name : undefined;
  if (key === undefined) {
    const matches = [...candidates].filter((k) => k.endsWith(`:${name.toLowerCase()}`));
    if (matches.length > 1) throw new Error(`scope "${name}" is ambiguous: ${matches.join(', ')}`);
    key = matches[0];
  }
  if (key === undefined) {
    throw new Error(
      `no scope "${name}" in the config or among discovered scopes; known: ${[...candidates].join(', ') || 'none'}`,
    );
  }
  const spec = await ctx.catalog.resolve(key);
  if (spec === undefined) throw new Error(`${key} is not polled any more (discovery found it gone)`);
  return spec;
}

async function request(
  ctx: Context,
  options: BackfillOptions,
  io: BackfillIo,
): Promise<Followed[] | undefined> {
  const names = options.scope ?? [];
  if (names.length === 0 || options.since === undefined) {
    io.err('✗ name at least one --scope and how far back with --since (e.g. --since 90d)\n');
    return undefined;
  }
  const now = ctx.now();
  const sinceMs = parseTime(options.since, now, '--since');
  const untilMs = options.until === undefined ? undefined : parseTime(options.until, now, '--until');
  const followed: Followed[] = [];
  let failed = false;
  for (const name of names) {
    const scope = await resolveScope(ctx, name);
    const history = ctx.sources.get(scope.provider)?.history;
    if (history === undefined) {
      io.err(`✗ ${scope.key}: provider type ${scope.providerType} cannot read history ranges\n`);
      failed = true;
      continue;
    }
    const stored = await ctx.state.checkpoint(scope.key);
    const floorMs = history.liveFloorMs(pollScope(scope), stored?.checkpoint);
    let toMs = floorMs;
    if (untilMs !== undefined) toMs = floorMs === undefined ? untilMs : Math.min(untilMs, floorMs);
    if (toMs === undefined) {
      io.err(
        stored === undefined
          ? `✗ ${scope.key} has not been polled yet: start the shipper first. Its first poll fixes where live polling begins (and reads a lookback longer than a day by itself); then backfill before that.\n`
          : `✗ ${scope.key}: its checkpoint predates backfill support, so where its live polling began is unknown and a backfill could ship events twice. Give the end with --until (events shipped before it may then arrive twice).\n`,
      );
      failed = true;
      continue;
    }
    const fromMs = Math.max(sinceMs, history.retainedFromMs(now));
    if (fromMs >= toMs) {
      io.out(`${scope.key}: nothing to backfill, live polling covers everything since ${iso(toMs)}\n`);
      continue;
    }
    const { outcome, run } = await ctx.store.request(scope.key, { fromMs, toMs }, 'command', now);
    switch (outcome) {
      case 'created':
      case 'extended':
        io.out(
          `${scope.key}: backfill of ${iso(run.fromMs)} to ${iso(run.toMs)} queued (${formatDuration(run.toMs - run.fromMs)}${fromMs > sinceMs ? `; older history is past the provider's retention` : ''})\n`,
        );
        followed.push({ scope: scope.key, fromMs });
        break;
      case 'covered':
        io.out(
          `${scope.key}: already ${run.status === 'done' ? 'backfilled' : 'being backfilled'} from ${iso(run.fromMs)}\n`,
        );
        followed.push({ scope: scope.key, fromMs: run.fromMs });
        break;
      case 'busy':
        io.err(
          `✗ ${scope.key}: a backfill from ${iso(run.fromMs)} is still running; ask for history before it when it is done\n`,
        );
        failed = true;
        followed.push({ scope: scope.key, fromMs: run.fromMs });
        break;
    }
  }
  return failed && followed.length === 0 ? undefined : followed;
}

interface Row {
  readonly scope: string;
  readonly run: BackfillRun | undefined;
  readonly fraction: number;
  readonly windowsDone: number;
  readonly windows: number;
  readonly readUntilMs: number;
  readonly committed: number;
  readonly done: boolean;
}

async function readRow(ctx: Pick<Context, 'store' | 'state'>, item: Followed): Promise<Row> {
  const run = await ctx.store.get(item.scope);
  const stored = await ctx.state.checkpoint(backfillScopeKey(item.scope));
  if (run === undefined) {
    return {
      scope: item.scope,
      run,
      fraction: 0,
      windowsDone: 0,
      windows: 0,
      readUntilMs: 0,
      committed: 0,
      done: false,
    };
  }
  const progress = describeProgress(run, stored?.checkpoint.watermarkMs);
  return {
    scope: item.scope,
    run,
    ...progress,
    committed: stored?.committed ?? 0,
    done: run.status === 'done' && run.fromMs <= item.fromMs,
  };
}

async function follow(ctx: Context, followed: readonly Followed[], io: BackfillIo): Promise<number> {
  const refreshMs = io.refreshMs ?? 1_000;
  const printed = new Map<string, { windowsDone: number; atMs: number; done: boolean }>();
  const rates = new Map(followed.map((item) => [item.scope, new BackfillRate()]));
  const stall = new StallWatch();
  let drawn = 0;
  for (;;) {
    const now = ctx.now();
    const rows = await Promise.all(followed.map((item) => readRow(ctx, item)));
    const rated = rows.map((row) => ({
      row,
      rate: (rates.get(row.scope) as BackfillRate).update(now, row.fraction, row.committed),
    }));
    // Progress is any page committed, not only a finished day: a busy day of many pages moves the
    // read-up-to mark only at its end, and that is not a stall.
    const key = rows.map((r) => `${r.run?.runId}:${r.readUntilMs}:${r.committed}:${r.done}`).join('|');
    if (io.tty) {
      if (drawn > 0) io.out(`\x1b[${drawn}F`);
      for (const { row, rate } of rated) io.out(`\x1b[2K${bar(row, rate)}\n`);
      drawn = rows.length;
    } else {
      for (const { row, rate } of rated) {
        const last = printed.get(row.scope);
        if (row.done && last?.done) continue;
        if (
          !row.done &&
          last !== undefined &&
          (last.windowsDone === row.windowsDone || now - last.atMs < 2_000)
        )
          continue;
        io.out(`${line(row, rate)}\n`);
        printed.set(row.scope, { windowsDone: row.windowsDone, atMs: now, done: row.done });
      }
    }
    if (rows.every((row) => row.done)) {
      io.out(`backfill complete for ${rows.length} scope${rows.length === 1 ? '' : 's'}\n`);
      return 0;
    }
    // A run told to wait (rate limit, backoff after a failure) is not stalled: it says so in its line.
    const waiting = rows.some((r) => r.run?.notBeforeMs !== undefined && r.run.notBeforeMs > now);
    if (stall.stalled(now, key, waiting)) {
      io.err(
        'no progress for a minute: is a shipper running with daemon.backfill.concurrency above 0, and are live polls leaving room in the rate limit?\n',
      );
    }
    try {
      await sleep(refreshMs, io.signal);
    } catch {
      io.out(
        '\nstopped following; the backfill goes on in the shipper (see: auditlog-shipper backfill --status)\n',
      );
      return 0;
    }
  }
}

const NO_RATE: RateEstimate = { eventsPerSecond: undefined, etaMs: undefined };

function bar(row: Row, rate: RateEstimate = NO_RATE): string {
  const width = 30;
  const filled = Math.round(row.fraction * width);
  const pct = `${Math.floor(row.fraction * 100)}`.padStart(3);
  const state = row.done ? 'done' : `up to ${iso(row.readUntilMs).slice(0, 16)}${waitingFor(row)}`;
  return `${row.scope}  [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${pct}%  ${row.windowsDone}/${row.windows} days  ${row.committed} events  ${state}${row.done ? '' : describeRate(rate, formatDuration)}`;
}

function line(row: Row, rate: RateEstimate = NO_RATE): string {
  if (row.run === undefined) return `backfill ${row.scope}: no backfill record`;
  const pct = Math.floor(row.fraction * 100);
  return row.done
    ? `backfill ${row.scope}: done, ${iso(row.run.fromMs)} to ${iso(row.run.toMs)} read (${row.committed} events committed)`
    : `backfill ${row.scope}: ${row.windowsDone}/${row.windows} days (${pct}%), read up to ${iso(row.readUntilMs)}, ${row.committed} events committed${describeRate(rate, formatDuration).replace(/^ {2}/, ', ')}${waitingFor(row)}${row.run.lastError ? `; last error: ${row.run.lastError}` : ''}`;
}

/** `, waiting until …` for a run the shipper deferred (rate limit, backoff after a failure). */
function waitingFor(row: Row): string {
  const notBefore = row.run?.notBeforeMs;
  return notBefore !== undefined && notBefore > Date.now()
    ? `, waiting until ${iso(notBefore).slice(11, 19)}`
    : '';
}

/**
 * `--status`: every backfill and its progress. It needs only Redis (from -c, else REDIS_URL, else the
 * embedded one), so it works from any shell next to the shipper.
 */
async function statusOnly(options: BackfillOptions, io: BackfillIo): Promise<number> {
  let target: RedisTarget | undefined;
  try {
    target = await openRedisTarget(options.config);
    const keys = new RedisKeys(target.settings.redis.prefix);
    const store = new BackfillStore(target.redis, keys);
    const state = new ScopeStateStore(target.redis, keys);
    const runs = await store.list();
    if (runs.length === 0) {
      io.out('no backfills\n');
      return 0;
    }
    for (const run of runs) {
      io.out(`${line(await readRow({ store, state }, { scope: run.scope, fromMs: run.fromMs }))}\n`);
    }
    return 0;
  } catch (error) {
    io.err(`✗ ${(error as Error).message}\n`);
    return 1;
  } finally {
    await target?.close();
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function register(program: Command): void {
  program
    .command('backfill')
    .description(
      'Read history older than live polling covers (at most the 90-day retention), in the shippers’ backfill lane, and follow its progress.',
    )
    .option(
      '-c, --config <file>',
      'the config file (providers, scopes, Redis); --status needs only Redis: REDIS_URL, else the embedded one',
    )
    .option('-s, --scope <scope...>', 'scope key or UUID (configured or discovered); repeatable')
    .option('--since <time>', 'how far back: a duration before now (90d) or an RFC 3339 time')
    .option('--until <time>', 'end of the history to read; only for scopes whose live start is unknown')
    .option('--detach', 'queue the backfill and return without following it')
    .option('--status', 'show every backfill and its progress')
    .action(async (options: BackfillOptions) => {
      const controller = new AbortController();
      process.once('SIGINT', () => controller.abort());
      process.once('SIGTERM', () => controller.abort());
      process.exitCode = await backfill(options, {
        out: (text) => void process.stdout.write(redactSecrets(text)),
        err: (text) => void process.stderr.write(redactSecrets(text)),
        tty: process.stdout.isTTY === true,
        signal: controller.signal,
      });
      setTimeout(() => process.exit(process.exitCode ?? 0), 200).unref();
    });
}
