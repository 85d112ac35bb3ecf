import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { accessSync, constants, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
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

/** How long a start waits for another process that is starting Redis in the same directory. */
const START_LOCK_WAIT_MS = 30_000;
/** How long a leftover redis-server gets to answer before it counts as hung. */
const PROBE_TIMEOUT_MS = 2_000;

/**
 * A local `redis-server` child with AOF on and `noeviction`, the settings the shipper's guarantees need.
 * It runs in its own process group: Ctrl-C in a terminal reaches the shipper, which shuts down in order
 * and then stops Redis, instead of Redis vanishing under a shutdown in progress. If the shipper is killed,
 * Redis keeps running and the next start in the same directory reuses it.
 *
 * Two redis-servers must never append to one AOF. The directory's `redis.pid` (written the moment the
 * server is spawned, before it is ready) names the server that owns the directory; a start checks it
 * while holding `redis.lock` (created exclusively, naming the starting process, removed when the start
 * is done, taken over when its process is dead), so two starts never both spawn. A live owner that
 * answers is adopted; one that does not (hung, stopped) is stopped before a new one starts.
 */
export class RedisServerProcess {
  readonly dir: string;
  port: number;
  #child: ChildProcess | undefined;
  readonly #args: readonly string[];
  /** Pid of an unresponsive leftover redis-server the last start stopped, for the caller to report. */
  stoppedLeftover: number | undefined;

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
    const release = await this.#lockStart();
    try {
      if (await this.#adoptOrStopLeftover()) return true;
      if (this.port === 0) this.port = await freePort();
      // Port first, pid the moment the child exists: a start killed right after the spawn still leaves
      // enough behind for the next start to find this server instead of spawning a second one.
      writeFileSync(join(this.dir, 'redis.port'), String(this.port));
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
      if (this.#child.pid !== undefined) writeFileSync(join(this.dir, 'redis.pid'), String(this.#child.pid));
      this.#child.unref();
      try {
        await this.#waitReady(10_000);
      } catch (error) {
        // A server that never became ready (it refuses our PING, it hangs) must not stay behind holding
        // the directory's AOF; a later start would otherwise find it and have to stop it.
        this.#child.kill('SIGKILL');
        throw error;
      }
      return false;
    } finally {
      release();
    }
  }

  /**
   * Takes `redis.lock` for the duration of a start: exclusive creation, so of two starts in one directory
   * (two shippers, a shipper and a CLI command) one waits for the other and then adopts its server.
   */
  async #lockStart(): Promise<() => void> {
    const path = join(this.dir, 'redis.lock');
    const token = `${process.pid} ${randomUUID()}`;
    const deadline = Date.now() + START_LOCK_WAIT_MS;
    for (;;) {
      try {
        writeFileSync(path, token, { flag: 'wx' });
        return () => {
          try {
            if (readFileSync(path, 'utf8') === token) unlinkSync(path);
          } catch {
            // already gone
          }
        };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      let holder: number | undefined;
      try {
        holder = Number(readFileSync(path, 'utf8').split(' ')[0]);
      } catch {
        continue; // released meanwhile
      }
      if (!Number.isInteger(holder) || holder <= 0 || !isAlive(holder)) {
        // Its process died during a start: the lock is stale (what it left is checked next).
        try {
          unlinkSync(path);
        } catch {
          // another start removed it first
        }
        continue;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `process ${holder} has been starting the embedded redis-server in ${this.dir} for ` +
            `${START_LOCK_WAIT_MS / 1000} s; if it is gone, remove ${path}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * A redis-server a previous run left in this directory: adopted when it answers with this directory,
   * stopped when it is alive but does not answer (hung, SIGSTOPped), so it can never share the AOF.
   */
  async #adoptOrStopLeftover(): Promise<boolean> {
    this.stoppedLeftover = undefined;
    const pid = this.#pidFromFile();
    if (pid === undefined || !isAlive(pid)) return false;
    // redis-server shows its address in its title ("redis-server 127.0.0.1:6379"): a live pid whose
    // title is not that of this directory's server was reused by another process, which is left alone.
    const title = processTitle(pid);
    const titlePort = /redis-server \S*:(\d+)/.exec(title ?? '')?.[1];
    const port = this.#portFromFile() ?? (titlePort === undefined ? undefined : Number(titlePort));
    if (title !== undefined && (titlePort === undefined || Number(titlePort) !== port)) return false;
    if (port !== undefined && (await answersFrom(port, this.dir))) {
      this.port = port;
      return true;
    }
    if (title === undefined) {
      throw new Error(
        `process ${pid} from ${join(this.dir, 'redis.pid')} is alive but does not answer as this ` +
          `directory's redis-server; stop it (or remove the pid file if it is not redis-server)`,
      );
    }
    await stopProcess(pid);
    this.stoppedLeftover = pid;
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

  #pidFromFile(): number | undefined {
    try {
      const pid = Number(readFileSync(join(this.dir, 'redis.pid'), 'utf8').trim());
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  #portFromFile(): number | undefined {
    try {
      const port = Number(readFileSync(join(this.dir, 'redis.port'), 'utf8').trim());
      return Number.isInteger(port) && port > 0 ? port : undefined;
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

/** Whether a redis-server answers on `port` and serves `dir`, within PROBE_TIMEOUT_MS. */
async function answersFrom(port: number, dir: string): Promise<boolean> {
  const client = probe(`redis://127.0.0.1:${port}`);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolveTimeout) => {
    timer = setTimeout(() => resolveTimeout(false), PROBE_TIMEOUT_MS);
  });
  const check = (async () => {
    await client.connect();
    const reply = (await client.config('GET', 'dir')) as string[];
    return resolve(reply[1] ?? '') === dir;
  })().catch(() => false);
  try {
    return await Promise.race([check, timeout]);
  } finally {
    clearTimeout(timer);
    client.disconnect();
  }
}

/** The process's command line (redis-server shows its address there), or undefined where /proc is absent. */
function processTitle(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return undefined;
  }
}

/** SIGTERM, then SIGKILL if it is still there after 5 s (a stopped process only yields to SIGKILL). */
async function stopProcess(pid: number): Promise<void> {
  const gone = async (ms: number): Promise<boolean> => {
    const deadline = Date.now() + ms;
    while (isAlive(pid)) {
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
    return true;
  };
  try {
    process.kill(pid, 'SIGTERM');
    process.kill(pid, 'SIGCONT');
  } catch {
    return;
  }
  if (await gone(5_000)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  await gone(10_000);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
