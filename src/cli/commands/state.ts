import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { formatDuration } from '../../config/duration.ts';
import { RedisKeys } from '../../pipeline/keys.ts';
import { ScopeStateStore } from '../../pipeline/scope-state.ts';
import { failCommand, redisCommandOptions, writeOut } from '../command-io.ts';
import { openRedisTarget, type RedisTarget } from '../redis-target.ts';
import { scopeOrigins } from '../scope-origins.ts';

interface StateOptions {
  readonly config?: string;
  readonly json?: boolean;
  readonly force?: boolean;
  /** `state reset` without asking. */
  readonly yes?: boolean;
}

/** Asks the operator a yes/no question; undefined where there is nobody to ask (no terminal). */
export type Confirm = ((question: string) => Promise<boolean>) | undefined;

/**
 * A scope is named by its key (`stackit:project:<uuid>`) or, when unambiguous, by its id alone. Scopes
 * that left the config but still have state in Redis can be named too.
 */
async function resolveScope(target: RedisTarget, store: ScopeStateStore, name: string): Promise<string> {
  const candidates = new Set([
    ...(target.config?.scopes.map((s) => s.key) ?? []),
    ...(await store.knownScopes()),
  ]);
  if (candidates.has(name)) return name;
  const matches = [...candidates].filter((key) => key.endsWith(`:${name}`));
  if (matches.length === 1) return matches[0] as string;
  if (matches.length > 1) throw new Error(`"${name}" is ambiguous: ${matches.join(', ')}`);
  throw new Error(
    `no scope "${name}" in ${target.config ? 'the config or ' : ''}Redis; known: ${[...candidates].join(', ') || 'none'}`,
  );
}

async function withStore<T>(
  options: StateOptions,
  run: (store: ScopeStateStore, target: RedisTarget) => Promise<T>,
) {
  const target = await openRedisTarget(options.config);
  try {
    return await run(new ScopeStateStore(target.redis, new RedisKeys(target.settings.redis.prefix)), target);
  } finally {
    await target.close();
  }
}

const iso = (ms: number | undefined): string => (ms === undefined ? '-' : new Date(ms).toISOString());

export async function showState(
  scopeName: string,
  options: StateOptions,
  out: (s: string) => void,
): Promise<void> {
  await withStore(options, async (store, target) => {
    const key = await resolveScope(target, store, scopeName);
    const [stored, status] = await Promise.all([store.checkpoint(key), store.status(key)]);
    const now = Date.now();
    const view = {
      scope: key,
      checkpoint: stored?.checkpoint.state ?? null,
      watermark: stored?.checkpoint.watermarkMs !== undefined ? iso(stored.checkpoint.watermarkMs) : null,
      lagSeconds:
        stored?.checkpoint.watermarkMs !== undefined
          ? Math.round((now - stored.checkpoint.watermarkMs) / 1000)
          : null,
      updatedAt: stored ? iso(stored.updatedAtMs) : null,
      committedEvents: stored?.committed ?? 0,
      fencingToken: stored?.token ?? null,
      seenIds: status.seenIds,
      pollRunning: status.leaseHeld,
      lastPoll: status.lastPoll
        ? {
            ...status.lastPoll,
            startedAtMs: undefined,
            endedAtMs: undefined,
            startedAt: iso(status.lastPoll.startedAtMs),
            endedAt: iso(status.lastPoll.endedAtMs),
          }
        : null,
      lastSuccessAt: status.lastSuccessAtMs !== undefined ? iso(status.lastSuccessAtMs) : null,
      consecutiveFailures: status.consecutiveFailures,
      waitUntil: status.waitUntilMs !== undefined ? iso(status.waitUntilMs) : null,
    };
    if (options.json) {
      out(`${JSON.stringify(view, null, 2)}\n`);
      return;
    }
    const lines = [
      `scope             ${key}`,
      `watermark         ${view.watermark ?? 'none yet (first window not complete)'}${view.lagSeconds !== null ? `  (lag ${formatDuration(view.lagSeconds * 1000)})` : ''}`,
      `checkpoint        ${JSON.stringify(view.checkpoint)}`,
      `updated           ${view.updatedAt ?? '-'}  (fencing token ${view.fencingToken ?? '-'})`,
      `committed events  ${view.committedEvents}`,
      `seen ids kept     ${view.seenIds}`,
      `poll running      ${view.pollRunning ? 'yes' : 'no'}`,
      `last poll         ${status.lastPoll ? `${status.lastPoll.outcome} at ${iso(status.lastPoll.endedAtMs)}, ${status.lastPoll.added} new events` : 'never'}`,
      ...(status.lastPoll?.error
        ? [`last error        ${status.lastPoll.error.reason}: ${status.lastPoll.error.message}`]
        : []),
      `last success      ${view.lastSuccessAt ?? 'never'}`,
      `failures in a row ${view.consecutiveFailures}`,
      ...(view.waitUntil ? [`provider waits    until ${view.waitUntil} (Retry-After)`] : []),
    ];
    out(`${lines.join('\n')}\n`);
  });
}

/**
 * Forgets a scope's checkpoint, after asking: a reset re-reads the lookback, and with a long lookback
 * that is a lot of provider requests. `--yes` skips the question; without a terminal to ask on and
 * without `--yes` it refuses, so a script never resets by accident.
 */
export async function resetState(
  scopeName: string,
  options: StateOptions,
  out: (s: string) => void,
  confirm: Confirm = undefined,
): Promise<void> {
  await withStore(options, async (store, target) => {
    const key = await resolveScope(target, store, scopeName);
    const status = await store.status(key);
    if (status.leaseHeld && !options.force) {
      throw new Error(`a poll of ${key} is running right now; stop the shipper first or pass --force`);
    }
    if (!options.yes) {
      if (confirm === undefined) {
        throw new Error(`state reset ${key} needs confirmation: pass --yes (there is no terminal to ask on)`);
      }
      const question = `Reset ${key}? Its next poll starts again from the lookback (${status.seenIds} ids in its seen-set are not shipped twice). [y/N] `;
      if (!(await confirm(question))) {
        out(`not reset: ${key} is unchanged\n`);
        return;
      }
    }
    const removed = await store.reset(key);
    out(
      removed
        ? `reset ${key}: its next poll starts again from the lookback; events still in its seen-set (${status.seenIds}) are not shipped twice\n`
        : `${key} had no checkpoint; nothing to reset\n`,
    );
  });
}

export async function listState(options: StateOptions, out: (s: string) => void): Promise<void> {
  await withStore(options, async (store, target) => {
    const origins = await scopeOrigins(
      target.redis,
      new RedisKeys(target.settings.redis.prefix),
      target.config?.scopes.map((s) => s.key) ?? [],
    );
    const known = await store.knownScopes();
    const rows = await Promise.all(
      known.map(async (key) => ({
        key,
        stored: await store.checkpoint(key),
        origin: origins.get(key) ?? null,
      })),
    );
    if (options.json) {
      out(
        `${JSON.stringify(
          rows.map((r) => ({
            scope: r.key,
            watermark: r.stored?.checkpoint.watermarkMs ?? null,
            committed: r.stored?.committed ?? 0,
            origin: r.origin,
          })),
          null,
          2,
        )}\n`,
      );
      return;
    }
    for (const { key, stored, origin } of rows) {
      const mark =
        origin === 'config' ? '' : origin ? `  (${origin})` : target.config ? '  (not in config)' : '';
      out(
        `${key}  watermark ${iso(stored?.checkpoint.watermarkMs)}  committed ${stored?.committed ?? 0}${mark}\n`,
      );
    }
    if (rows.length === 0) out('no scope has state yet\n');
  });
}

export function register(program: Command): void {
  const state = program
    .command('state')
    .description('Inspect or reset what Redis holds about a scope (checkpoint, last poll, seen-set).');
  redisCommandOptions(state.command('list').description('scopes with state in Redis')).action(
    (o: StateOptions) => listState(o, writeOut).catch(failCommand),
  );
  redisCommandOptions(
    state.command('show <scope>').description('checkpoint, lag and last poll of one scope'),
  ).action((scope: string, o: StateOptions) => showState(scope, o, writeOut).catch(failCommand));
  redisCommandOptions(
    state
      .command('reset <scope>')
      .description('forget the checkpoint: the next poll starts from the lookback'),
  )
    .option('--force', 'reset even while a poll of the scope is running')
    .option('-y, --yes', 'do not ask for confirmation (needed where there is no terminal)')
    .action((scope: string, o: StateOptions) =>
      resetState(scope, o, writeOut, process.stdin.isTTY ? askOnTerminal : undefined).catch(failCommand),
    );
}

async function askOnTerminal(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}
