import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { delimiter, join, resolve } from 'node:path';
import { Redis } from 'ioredis';

export const REDIS_INSTALL_HINT =
  'install it (Debian/Ubuntu: "apt-get install -y redis-server"; macOS: "brew install redis") ' +
  'or point REDIS_URL at a Redis 6.2+ with maxmemory-policy noeviction';

export interface RedisServerOptions {
  /** Data directory: AOF, pid and port files live here. */
  readonly dir: string;
  /** 0 picks a free port. */
  readonly port?: number;
  /** Extra `redis-server` arguments, e.g. ['--appendfsync', 'always']. */
  readonly args?: readonly string[];
}

/** Finds an executable on PATH without a shell. */
export function findExecutable(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export async function freePort(): Promise<number> {
  return await new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolvePort(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * A local `redis-server` child with AOF on and `noeviction`, the settings the shipper's guarantees need.
 * It runs in its own process group: Ctrl-C in a terminal reaches the shipper, which shuts down in order
 * and then stops Redis, instead of Redis vanishing under a shutdown in progress. If the shipper is killed,
 * Redis keeps running and the next start in the same directory reuses it.
 */
export class RedisServerProcess {
  readonly dir: string;
  port: number;
  #child: ChildProcess | undefined;
  readonly #args: readonly string[];

  constructor(options: RedisServerOptions) {
    this.dir = resolve(options.dir);
    this.port = options.port ?? 0;
    this.#args = options.args ?? [];
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Starts redis-server, or adopts one a previous run left in this directory. Returns true if adopted. */
  async start(): Promise<boolean> {
    const binary = findExecutable('redis-server');
    if (!binary) throw new Error(`redis-server was not found on PATH: ${REDIS_INSTALL_HINT}`);
    await mkdir(this.dir, { recursive: true });
    if (await this.#adopt()) return true;
    if (this.port === 0) this.port = await freePort();
    this.#child = spawn(
      binary,
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'everysec',
        '--maxmemory-policy',
        'noeviction',
        '--save',
        '',
        '--pidfile',
        join(this.dir, 'redis.pid'),
        '--logfile',
        join(this.dir, 'redis.log'),
        ...this.#args,
      ],
      { detached: true, stdio: 'ignore' },
    );
    this.#child.unref();
    await this.#waitReady(10_000);
    writeFileSync(join(this.dir, 'redis.port'), String(this.port));
    return false;
  }

  /** Graceful: SHUTDOWN flushes the AOF. */
  async stop(): Promise<void> {
    const client = probe(this.url);
    try {
      await client.connect();
      await client.call('SHUTDOWN').catch(() => undefined);
    } catch {
      // already gone
    } finally {
      client.disconnect();
    }
    await this.#waitGone(10_000);
  }

  /** Abrupt: SIGKILL, as a crash or an OOM kill would. */
  async kill(): Promise<void> {
    const pid = this.#child?.pid ?? this.#pidFromFile();
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await this.#waitGone(10_000);
  }

  /** Starts again on the same port and directory (replaying the AOF). */
  async restart(): Promise<void> {
    this.#child = undefined;
    await this.start();
  }

  async #adopt(): Promise<boolean> {
    const portFile = join(this.dir, 'redis.port');
    const pid = this.#pidFromFile();
    if (pid === undefined || !existsSync(portFile) || !isAlive(pid)) return false;
    const port = Number(readFileSync(portFile, 'utf8'));
    const client = probe(`redis://127.0.0.1:${port}`);
    try {
      await client.connect();
      const dir = (await client.config('GET', 'dir')) as string[];
      if (resolve(dir[1] ?? '') !== this.dir) return false;
      this.port = port;
      return true;
    } catch {
      return false;
    } finally {
      client.disconnect();
    }
  }

  #pidFromFile(): number | undefined {
    try {
      const pid = Number(readFileSync(join(this.dir, 'redis.pid'), 'utf8').trim());
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  async #waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    while (Date.now() < deadline) {
      if (this.#child?.exitCode !== null && this.#child?.exitCode !== undefined) {
        throw new Error(
          `redis-server exited at start (code ${this.#child.exitCode}); see ${join(this.dir, 'redis.log')}`,
        );
      }
      const client = probe(this.url);
      try {
        await client.connect();
        await client.ping();
        return;
      } catch (error) {
        lastError = error;
      } finally {
        client.disconnect();
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server did not become ready in ${timeoutMs} ms: ${String(lastError)}`);
  }

  async #waitGone(timeoutMs: number): Promise<void> {
    const pid = this.#child?.pid ?? this.#pidFromFile();
    const deadline = Date.now() + timeoutMs;
    while (pid !== undefined && isAlive(pid) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** A one-shot client that neither retries nor reports its connection errors as unhandled. */
function probe(url: string): Redis {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  return client;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
