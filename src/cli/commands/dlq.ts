import type { Command } from 'commander';
import { DELIVERY_GROUP, RedisKeys } from '../../pipeline/keys.ts';
import { LuaScript } from '../../pipeline/script.ts';
import { keysWithPrefix, type RedisClient } from '../../redis/client.ts';
import { failCommand, redisCommandOptions, writeOut } from '../command-io.ts';
import { openRedisTarget, type RedisTarget } from '../redis-target.ts';

interface DlqOptions {
  readonly config?: string;
  readonly json?: boolean;
  readonly limit?: string;
  readonly line?: boolean;
  readonly all?: boolean;
  readonly id?: string[];
  readonly reason?: string;
  readonly dryRun?: boolean;
}

/** The fields an outbox entry needs; a dead-letter entry without them cannot go back. */
const OUTBOX_FIELDS = ['id', 'scope', 't', 'seen', 'line'] as const;

/**
 * Moves dead-lettered entries back into the sink's outbox, each in the same step as its removal from
 * the dead-letter stream, so none is lost or doubled whatever happens to the command. KEYS: dlq, outbox.
 * ARGV: group, then dead-letter entry ids. Returns {moved ids, skipped ids}.
 */
const REDRIVE = new LuaScript(`
local moved, skipped = {}, {}
for i = 2, #ARGV do
  local found = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])
  if found[1] then
    local f = {}
    local flat = found[1][2]
    for j = 1, #flat, 2 do f[flat[j]] = flat[j + 1] end
    if f.id and f.scope and f.t and f.seen and f.line then
      redis.call('XADD', KEYS[2], '*', 'id', f.id, 'scope', f.scope, 't', f.t, 'seen', f.seen, 'line', f.line)
      redis.call('XDEL', KEYS[1], ARGV[i])
      moved[#moved + 1] = ARGV[i]
    else
      skipped[#skipped + 1] = ARGV[i]
    end
  end
end
return {moved, skipped}
`);

export interface DeadLetter {
  /** Id of the dead-letter stream entry. */
  readonly dlqEntry: string;
  /** The outbox entry it was. */
  readonly entry: string;
  readonly eventId: string;
  readonly scope: string;
  readonly reason: string;
  readonly rejectedAt: string;
  readonly line: string | undefined;
}

async function withTarget<T>(
  options: DlqOptions,
  run: (redis: RedisClient, keys: RedisKeys, target: RedisTarget) => Promise<T>,
): Promise<T> {
  const target = await openRedisTarget(options.config);
  try {
    return await run(target.redis, new RedisKeys(target.settings.redis.prefix), target);
  } finally {
    await target.close();
  }
}

function toDeadLetter([dlqEntry, flat]: [string, string[]]): DeadLetter {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i] as string] = flat[i + 1] as string;
  const at = Number(f.rejectedAt);
  return {
    dlqEntry,
    entry: f.entry ?? '-',
    eventId: f.id ?? '-',
    scope: f.scope ?? '-',
    reason: f.reason ?? '-',
    rejectedAt: Number.isFinite(at) ? new Date(at).toISOString() : '-',
    line: f.line,
  };
}

/**
 * The configured sinks, plus every sink that exists in Redis: each has an outbox stream (created with
 * its consumer group when the sink starts), and one that left the config may still hold dead letters.
 */
async function sinkNames(redis: RedisClient, keys: RedisKeys, target: RedisTarget): Promise<string[]> {
  const names = new Set(target.config?.sinks.map((s) => s.name) ?? []);
  for (const prefix of [keys.outbox(''), keys.deadLetter('')]) {
    for (const key of await keysWithPrefix(redis, prefix)) names.add(key.slice(prefix.length));
  }
  return [...names].sort();
}

export async function listDlq(options: DlqOptions, out: (s: string) => void): Promise<void> {
  await withTarget(options, async (redis, keys, target) => {
    const rows = [];
    for (const sink of await sinkNames(redis, keys, target)) {
      const key = keys.deadLetter(sink);
      const [length, oldest, newest, sample] = await Promise.all([
        redis.xlen(key),
        redis.xrange(key, '-', '+', 'COUNT', 1),
        redis.xrevrange(key, '+', '-', 'COUNT', 1),
        redis.xrevrange(key, '+', '-', 'COUNT', 1000),
      ]);
      const reasons = new Map<string, number>();
      for (const entry of sample) {
        const reason = toDeadLetter(entry as [string, string[]])
          .reason.replace(/event \S+/g, 'event …')
          .slice(0, 120);
        reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
      }
      rows.push({
        sink,
        deadLettered: length,
        oldest: oldest[0] ? toDeadLetter(oldest[0] as [string, string[]]).rejectedAt : null,
        newest: newest[0] ? toDeadLetter(newest[0] as [string, string[]]).rejectedAt : null,
        topReasons: [...reasons]
          .sort((a, b) => b[1] - a[1])
          .slice(0, 3)
          .map(([reason, count]) => ({ reason, count })),
      });
    }
    if (options.json) {
      out(`${JSON.stringify(rows, null, 2)}\n`);
      return;
    }
    if (rows.length === 0) out('no sinks\n');
    for (const row of rows) {
      out(
        `${row.sink}  ${row.deadLettered} dead-lettered${row.oldest ? `  (${row.oldest} … ${row.newest})` : ''}\n`,
      );
      for (const r of row.topReasons) out(`    ${r.count}× ${r.reason}\n`);
    }
  });
}

export async function showDlq(sink: string, options: DlqOptions, out: (s: string) => void): Promise<void> {
  await withTarget(options, async (redis, keys) => {
    const limit = Math.max(1, Number(options.limit ?? 20));
    const entries = (await redis.xrange(keys.deadLetter(sink), '-', '+', 'COUNT', limit)).map((e) =>
      toDeadLetter(e as [string, string[]]),
    );
    const total = await redis.xlen(keys.deadLetter(sink));
    if (options.json) {
      out(
        `${JSON.stringify(
          entries.map((e) => (options.line ? e : { ...e, line: undefined })),
          null,
          2,
        )}\n`,
      );
      return;
    }
    for (const e of entries) {
      out(
        `${e.dlqEntry}  event ${e.eventId}  scope ${e.scope}  rejected ${e.rejectedAt}\n    reason: ${e.reason}\n`,
      );
      if (options.line && e.line !== undefined) out(`    line: ${e.line}\n`);
    }
    out(`${entries.length} of ${total} dead-lettered events of sink "${sink}" shown\n`);
  });
}

export interface RedriveResult {
  readonly moved: number;
  readonly skipped: string[];
}

export async function redriveDlq(
  sink: string,
  options: DlqOptions,
  out: (s: string) => void,
): Promise<RedriveResult> {
  const ids = new Set(options.id ?? []);
  if (!options.all && ids.size === 0 && options.reason === undefined) {
    throw new Error('say which events: --all, --id EVENT_ID (repeatable) or --reason TEXT');
  }
  return await withTarget(options, async (redis, keys, target) => {
    if (target.config && !target.config.sinks.some((s) => s.name === sink)) {
      throw new Error(`sink "${sink}" is not in ${target.config.origin}; its outbox would have no reader`);
    }
    const dlq = keys.deadLetter(sink);
    const outbox = keys.outbox(sink);
    // The consumer group must exist before entries go back, or they would sit unread.
    try {
      await redis.xgroup('CREATE', outbox, DELIVERY_GROUP, '0', 'MKSTREAM');
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('BUSYGROUP')) throw error;
    }
    let moved = 0;
    const skipped: string[] = [];
    let cursor = '-';
    for (;;) {
      const page = (await redis.xrange(dlq, cursor, '+', 'COUNT', 500)).map((e) =>
        toDeadLetter(e as [string, string[]]),
      );
      if (page.length === 0) break;
      cursor = `(${(page.at(-1) as DeadLetter).dlqEntry}`;
      const chosen = page.filter(
        (e) =>
          options.all ||
          ids.has(e.eventId) ||
          (options.reason !== undefined && e.reason.includes(options.reason)),
      );
      if (chosen.length === 0) continue;
      if (options.dryRun) {
        for (const e of chosen) out(`would redrive ${e.dlqEntry} event ${e.eventId} (${e.reason})\n`);
        moved += chosen.length;
        continue;
      }
      const [done, notMoved] = (await REDRIVE.run(
        redis,
        [dlq, outbox],
        [DELIVERY_GROUP, ...chosen.map((e) => e.dlqEntry)],
      )) as [string[], string[]];
      moved += done.length;
      skipped.push(...notMoved);
    }
    for (const id of skipped)
      out(
        `kept ${id}: it lacks the fields of an outbox entry (${OUTBOX_FIELDS.join(', ')}) and cannot be resent\n`,
      );
    out(
      `${options.dryRun ? 'would move' : 'moved'} ${moved} events back into the outbox of sink "${sink}"\n`,
    );
    return { moved, skipped };
  });
}

export function register(program: Command): void {
  const dlq = program
    .command('dlq')
    .description('Inspect and resend the events a sink rejected for good (its dead-letter stream).');
  redisCommandOptions(dlq.command('list').description('dead-letter counts and top reasons per sink')).action(
    (o: DlqOptions) => listDlq(o, writeOut).catch(failCommand),
  );
  redisCommandOptions(dlq.command('show <sink>').description("a sink's dead-lettered events, oldest first"))
    .option('--limit <n>', 'how many', '20')
    .option('--line', 'print each event line too')
    .action((sink: string, o: DlqOptions) => showDlq(sink, o, writeOut).catch(failCommand));
  redisCommandOptions(
    dlq
      .command('redrive <sink>')
      .description("move dead-lettered events back into the sink's outbox, atomically"),
  )
    .option('--all', 'every dead-lettered event of the sink')
    .option('--id <eventId...>', 'only these event ids')
    .option('--reason <text>', 'only events whose reason contains this text')
    .option('--dry-run', 'list what would move, move nothing')
    .action((sink: string, o: DlqOptions) =>
      redriveDlq(sink, o, writeOut)
        .then(() => undefined)
        .catch(failCommand),
    );
}
