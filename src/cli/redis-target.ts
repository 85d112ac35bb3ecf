import { join } from 'node:path';
import { pino } from 'pino';
import { resolveDaemon } from '../config/daemon.ts';
import { loadConfig } from '../config/load.ts';
import type { DaemonSettings, ShipperConfig } from '../config/types.ts';
import { connectRedis } from '../daemon/redis.ts';
import { RedisServerProcess } from '../daemon/redis-server.ts';
import type { RedisClient } from '../redis/client.ts';

export interface RedisTarget {
  readonly redis: RedisClient;
  readonly settings: DaemonSettings;
  /** The loaded config, when one was given. */
  readonly config?: ShipperConfig;
  close(): Promise<void>;
}

/**
 * The Redis an operator command talks to: the one the config file names, else REDIS_URL, else the
 * embedded redis-server in the data directory (started for the command if it is not running).
 */
export async function openRedisTarget(configPath: string | undefined): Promise<RedisTarget> {
  let settings: DaemonSettings;
  let config: ShipperConfig | undefined;
  if (configPath !== undefined) {
    const loaded = loadConfig({ path: configPath });
    if (!loaded.ok) throw new Error(loaded.error.format());
    config = loaded.config;
    settings = config.daemon;
  } else {
    const resolved = resolveDaemon(undefined, { env: process.env, locate: () => undefined });
    if (!resolved.settings) throw new Error(resolved.issues.map((i) => `${i.path}: ${i.message}`).join('\n'));
    settings = resolved.settings;
  }
  const log = pino({ level: 'silent' });
  let startedHere: RedisServerProcess | undefined;
  let url = settings.redis.url;
  if (url === '') {
    const server = new RedisServerProcess({ dir: join(settings.dataDir, 'redis') });
    // Adopted: a running shipper owns it and it stays up. Started here: stopped again when done.
    const adopted = await server.start();
    if (!adopted) startedHere = server;
    url = server.url;
  }
  const redis = await connectRedis(url, 'cli', log);
  return {
    redis,
    settings,
    ...(config ? { config } : {}),
    async close() {
      redis.disconnect();
      await startedHere?.stop();
    },
  };
}
