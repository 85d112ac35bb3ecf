import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { RedisServerProcess } from '../../src/daemon/redis-server.ts';

export interface TestRedis {
  readonly server: RedisServerProcess;
  readonly url: string;
  /** A client for assertions; tests must not share it with code under test that blocks. */
  readonly client: Redis;
  connect(): Redis;
  stop(): Promise<void>;
}

/** A real redis-server on a free port in a temporary directory, AOF on, as production runs it. */
export async function startTestRedis(args: readonly string[] = []): Promise<TestRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'auditlog-redis-'));
  const server = new RedisServerProcess({ dir, args });
  await server.start();
  const clients: Redis[] = [];
  const connect = (): Redis => {
    const client = new Redis(server.url, { maxRetriesPerRequest: null });
    client.on('error', () => undefined); // tests restart Redis on purpose
    clients.push(client);
    return client;
  };
  const client = connect();
  return {
    server,
    get url() {
      return server.url;
    },
    client,
    connect,
    async stop() {
      for (const c of clients) c.disconnect();
      await server.kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
