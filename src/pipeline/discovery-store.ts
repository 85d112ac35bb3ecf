import { z } from 'zod';
import type { RedisClient } from '../redis/client.ts';
import type { ScopeRef } from './envelope.ts';
import type { RedisKeys } from './keys.ts';
import { LuaScript } from './script.ts';

/**
 * What discovery found, in Redis, where every replica's poll workers and the leader's scheduler read it.
 * One hash holds every discovered scope as JSON; a second holds each root's last walk with a version
 * number. Only the leader writes, in one script that checks it still leads and that the root's version
 * is the one it read: a deposed or stale leader cannot overwrite a newer answer.
 */

const refSchema = z.object({ kind: z.string().min(1), id: z.string().min(1) });

const entrySchema = z.object({
  /** Key of the configured scope whose walk found it. */
  root: z.string().min(1),
  ref: refSchema,
  name: z.string().optional(),
  firstSeenMs: z.number(),
  lastSeenMs: z.number(),
  /** Not found by a successful walk since then; still polled until the grace period ends. */
  missingSinceMs: z.number().optional(),
  /** Missing longer than the grace period: no longer polled; its state is kept until forgotten. */
  goneSinceMs: z.number().optional(),
});

export type DiscoveredEntry = z.infer<typeof entrySchema>;

const rootSchema = z.object({
  version: z.number().int().min(0),
  lastRunMs: z.number().optional(),
  lastSuccessMs: z.number().optional(),
  lastError: z.string().optional(),
  found: z.number().optional(),
});

export type RootRecord = z.infer<typeof rootSchema>;

export type EntryState = 'active' | 'missing' | 'gone';

export function entryState(entry: DiscoveredEntry): EntryState {
  if (entry.goneSinceMs !== undefined) return 'gone';
  return entry.missingSinceMs !== undefined ? 'missing' : 'active';
}

/**
 * KEYS: leader, scopes, roots, then state keys to delete. ARGV: holder, root, expected version, root
 * JSON, upsert count, (key, json)…, then keys to remove from the scopes hash.
 * Returns 1 applied, 0 not leader, -1 version moved on.
 */
const APPLY = new LuaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local current = redis.call('HGET', KEYS[3], ARGV[2])
local version = 0
if current then version = tonumber(cjson.decode(current).version) or 0 end
if version ~= tonumber(ARGV[3]) then return -1 end
local upserts = tonumber(ARGV[5])
local i = 6
for _ = 1, upserts do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  redis.call('HDEL', KEYS[2], ARGV[i])
  i = i + 1
end
for k = 4, #KEYS do redis.call('DEL', KEYS[k]) end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[4])
return 1
`);

export type ApplyResult = 'applied' | 'not-leader' | 'conflict';

export interface RootChange {
  readonly root: string;
  /** The root's version as read; the write is refused if it moved on. */
  readonly expectedVersion: number;
  readonly record: Omit<RootRecord, 'version'>;
  readonly upserts: ReadonlyMap<string, DiscoveredEntry>;
  /** Scopes forgotten: their entries and every state key given go. */
  readonly forget: readonly string[];
  readonly stateKeys: readonly string[];
}

export class DiscoveryStore {
  readonly #redis: RedisClient;
  readonly #keys: RedisKeys;

  constructor(redis: RedisClient, keys: RedisKeys) {
    this.#redis = redis;
    this.#keys = keys;
  }

  /** Every discovered scope. An entry that does not parse is skipped and reported, not guessed at. */
  async entries(onInvalid?: (key: string) => void): Promise<Map<string, DiscoveredEntry>> {
    const raw = await this.#redis.hgetall(this.#keys.discoveredScopes());
    const out = new Map<string, DiscoveredEntry>();
    for (const [key, json] of Object.entries(raw)) {
      const entry = parseEntry(json);
      if (entry) out.set(key, entry);
      else onInvalid?.(key);
    }
    return out;
  }

  async entry(scopeKey: string): Promise<DiscoveredEntry | undefined> {
    const json = await this.#redis.hget(this.#keys.discoveredScopes(), scopeKey);
    return json === null ? undefined : parseEntry(json);
  }

  async roots(): Promise<Map<string, RootRecord>> {
    const raw = await this.#redis.hgetall(this.#keys.discoveryRoots());
    const out = new Map<string, RootRecord>();
    for (const [root, json] of Object.entries(raw)) {
      try {
        const parsed = rootSchema.safeParse(JSON.parse(json));
        if (parsed.success) out.set(root, parsed.data);
      } catch {
        // unreadable: treated as never walked, and overwritten by the next walk
      }
    }
    return out;
  }

  async apply(holder: string, leaderKey: string, change: RootChange): Promise<ApplyResult> {
    const record: RootRecord = { ...change.record, version: change.expectedVersion + 1 };
    const args: Array<string | number> = [
      holder,
      change.root,
      change.expectedVersion,
      JSON.stringify(record),
      change.upserts.size,
    ];
    for (const [key, entry] of change.upserts) args.push(key, JSON.stringify(entry));
    args.push(...change.forget);
    const result = Number(
      await APPLY.run(
        this.#redis,
        [leaderKey, this.#keys.discoveredScopes(), this.#keys.discoveryRoots(), ...change.stateKeys],
        args,
      ),
    );
    return result === 1 ? 'applied' : result === 0 ? 'not-leader' : 'conflict';
  }

  /** A poll of a discovered scope got a 404: its root should be walked again soon. */
  async requestRecheck(root: string, nowMs: number): Promise<void> {
    await this.#redis.hset(this.#keys.discoveryRechecks(), root, nowMs);
  }

  async rechecks(): Promise<Map<string, number>> {
    const raw = await this.#redis.hgetall(this.#keys.discoveryRechecks());
    return new Map(Object.entries(raw).map(([root, ms]) => [root, Number(ms)]));
  }

  async clearRecheck(root: string, requestedAtMs: number): Promise<void> {
    // Only the request that was served: one that came in during the walk stays.
    const key = this.#keys.discoveryRechecks();
    if (Number(await this.#redis.hget(key, root)) === requestedAtMs) await this.#redis.hdel(key, root);
  }
}

function parseEntry(json: string): DiscoveredEntry | undefined {
  try {
    const parsed = entrySchema.safeParse(JSON.parse(json));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export function refOf(entry: DiscoveredEntry): ScopeRef {
  return { kind: entry.ref.kind, id: entry.ref.id };
}
