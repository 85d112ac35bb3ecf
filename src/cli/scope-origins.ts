import { DiscoveryStore, entryState } from '../pipeline/discovery-store.ts';
import type { RedisKeys } from '../pipeline/keys.ts';
import type { RedisClient } from '../redis/client.ts';

/**
 * Where each scope an operator command shows comes from: the config file, or discovery (with its
 * state: active, missing, gone). Scopes in neither are leftovers of an older config.
 */
export async function scopeOrigins(
  redis: RedisClient,
  keys: RedisKeys,
  configuredScopes: readonly string[],
): Promise<Map<string, string>> {
  const origins = new Map<string, string>();
  for (const [key, entry] of await new DiscoveryStore(redis, keys).entries()) {
    origins.set(key, `discovered, ${entryState(entry)}`);
  }
  for (const key of configuredScopes) origins.set(key, 'config');
  return origins;
}
