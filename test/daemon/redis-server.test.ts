import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RedisServerProcess } from '../../src/daemon/redis-server.ts';
import { alive } from '../support/daemon.ts';

// The embedded redis-server's data directory has one owner: two servers appending to one AOF would
// corrupt it. These run real redis-servers, started, stopped and SIGSTOPped as a crash would leave them.

let dir: string;
const servers: RedisServerProcess[] = [];
const stopped: number[] = [];

const server = (): RedisServerProcess => {
  const s = new RedisServerProcess({ dir });
  servers.push(s);
  return s;
};
const pidFile = (): number => Number(readFileSync(join(dir, 'redis.pid'), 'utf8'));
async function ping(port: number): Promise<string> {
  const client = new Redis(`redis://127.0.0.1:${port}`, { lazyConnect: true, maxRetriesPerRequest: 0 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await client.ping();
  } finally {
    client.disconnect();
  }
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'auditlog-redis-lock-'));
});
afterEach(async () => {
  for (const pid of stopped) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  stopped.length = 0;
  for (const s of servers.splice(0)) await s.kill();
  await rm(dir, { recursive: true, force: true });
});

describe('the embedded redis-server owns its data directory', () => {
  it('two starts at once in one directory run one redis-server: the second adopts the first', async () => {
    const a = server();
    const b = server();
    const adopted = await Promise.all([a.start(), b.start()]);
    expect(adopted.sort()).toEqual([false, true]);
    expect(a.port).toBe(b.port);
    expect(await ping(a.port)).toBe('PONG');
  });

  it('adopts a leftover whose start was killed before it recorded the port', async () => {
    const first = server();
    await first.start();
    rmSync(join(dir, 'redis.port'));
    const next = server();
    expect(await next.start()).toBe(true);
    expect(next.port).toBe(first.port);
    expect(pidFile()).toBe(first.pid);
  });

  it('stops a leftover that is alive but does not answer, then starts its own', async () => {
    const first = server();
    await first.start();
    const hung = first.pid as number;
    process.kill(hung, 'SIGSTOP');
    stopped.push(hung);
    const next = server();
    expect(await next.start()).toBe(false);
    expect(next.stoppedLeftover).toBe(hung);
    await vi.waitFor(() => expect(alive(hung)).toBe(false), { timeout: 20_000 });
    expect(pidFile()).toBe(next.pid);
    expect(await ping(next.port)).toBe('PONG');
  });

  it('leaves a process alone that reused a dead server’s pid', async () => {
    const first = server();
    await first.start();
    await first.stop();
    // The pid file now names this test process: alive, but no redis-server.
    writeFileSync(join(dir, 'redis.pid'), String(process.pid));
    const next = server();
    expect(await next.start()).toBe(false);
    expect(next.stoppedLeftover).toBeUndefined();
    expect(alive(process.pid)).toBe(true);
  });

  it('stops the server it spawned when that never becomes ready', async () => {
    // A password the start's own PING does not know: redis-server runs, but never answers it.
    const s = new RedisServerProcess({ dir, args: ['--requirepass', 'not-known-to-the-probe'] });
    servers.push(s);
    await expect(s.start()).rejects.toThrow(/did not become ready/);
    const pid = s.pid as number;
    await vi.waitFor(() => expect(alive(pid)).toBe(false), { timeout: 20_000 });
  });
});
