import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { findExecutable, freePort, RedisServerProcess } from '../../src/daemon/redis-server.ts';

/**
 * Real Redis topologies for the HA tests, from Debian's redis-server package: a Sentinel group (one
 * master, one replica, three sentinels: `redis-server --sentinel` is the same binary the redis-sentinel
 * package links to) and a three-master Cluster. Everything binds 127.0.0.1 and is killed by `stop()`.
 */

const MASTER_NAME = 'shipper';

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

function client(port: number): Redis {
  const c = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  c.on('error', () => undefined);
  return c;
}

async function ask<T>(port: number, run: (c: Redis) => Promise<T>): Promise<T> {
  const c = client(port);
  try {
    return await run(c);
  } finally {
    c.disconnect();
  }
}

export interface SentinelGroup {
  /** `redis+sentinel://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3/shipper` */
  readonly url: string;
  readonly masterName: string;
  /** The port of the data node the sentinels currently call master. */
  masterPort(): Promise<number>;
  /** `SENTINEL FAILOVER`, then waits until the other node is master and the sentinels agree. */
  failover(): Promise<{ from: number; to: number }>;
  stop(): Promise<void>;
}

export async function startSentinelGroup(): Promise<SentinelGroup> {
  const binary = findExecutable('redis-server');
  if (!binary) throw new Error('redis-server is not installed');
  const dir = await mkdtemp(join(tmpdir(), 'auditlog-sentinel-'));
  const master = new RedisServerProcess({ dir: join(dir, 'master') });
  await master.start();
  const replica = new RedisServerProcess({
    dir: join(dir, 'replica'),
    args: ['--replicaof', '127.0.0.1', String(master.port)],
  });
  await replica.start();
  const sentinels: ChildProcess[] = [];
  const sentinelPorts: number[] = [];
  const stop = async () => {
    for (const s of sentinels) s.kill('SIGKILL');
    await master.kill();
    await replica.kill();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitUntil('the replica to sync', async () =>
      (await ask(replica.port, (c) => c.info('replication'))).includes('master_link_status:up'),
    );
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = join(dir, `sentinel-${i}.conf`);
      // Sentinel rewrites its config file as it learns the group, so each gets its own, writable.
      await writeFile(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `logfile ${join(dir, `sentinel-${i}.log`)}`,
          `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${master.port} 2`,
          `sentinel down-after-milliseconds ${MASTER_NAME} 2000`,
          `sentinel failover-timeout ${MASTER_NAME} 10000`,
          `sentinel parallel-syncs ${MASTER_NAME} 1`,
          '',
        ].join('\n'),
      );
      sentinels.push(spawn(binary, [conf, '--sentinel'], { stdio: 'ignore' }));
      sentinelPorts.push(port);
    }
    // A forced failover needs a sentinel that knows the replica; discovery of peers is not needed for it.
    for (const port of sentinelPorts) {
      await waitUntil(`sentinel ${port} to see the replica`, async () => {
        const replicas = (await ask(port, (c) => c.call('SENTINEL', 'REPLICAS', MASTER_NAME))) as unknown[];
        return replicas.length === 1;
      });
    }
  } catch (error) {
    await stop();
    throw error;
  }
  const masterPort = async (): Promise<number> => {
    const [, port] = (await ask(sentinelPorts[0] as number, (c) =>
      c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME),
    )) as [string, string];
    return Number(port);
  };
  return {
    url: `redis+sentinel://${sentinelPorts.map((p) => `127.0.0.1:${p}`).join(',')}/${MASTER_NAME}`,
    masterName: MASTER_NAME,
    masterPort,
    async failover() {
      const from = await masterPort();
      const to = from === master.port ? replica.port : master.port;
      await ask(sentinelPorts[0] as number, (c) => c.call('SENTINEL', 'FAILOVER', MASTER_NAME));
      await waitUntil('the failover to finish', async () => {
        for (const port of sentinelPorts) {
          const [, p] = (await ask(port, (c) =>
            c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME),
          )) as [string, string];
          if (Number(p) !== to) return false;
        }
        return (await ask(to, (c) => c.info('replication'))).includes('role:master');
      });
      return { from, to };
    },
    stop,
  };
}

export interface TestCluster {
  /** `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3` */
  readonly url: string;
  readonly ports: readonly number[];
  stop(): Promise<void>;
}

/** Three masters, no replicas: `--cluster-enabled yes` and `redis-cli --cluster create`. */
export async function startTestCluster(): Promise<TestCluster> {
  const cli = findExecutable('redis-cli');
  if (!cli) throw new Error('redis-cli is not installed');
  const dir = await mkdtemp(join(tmpdir(), 'auditlog-cluster-'));
  const nodes: RedisServerProcess[] = [];
  const stop = async () => {
    for (const node of nodes) await node.kill();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 3; i++) {
      const node = new RedisServerProcess({
        dir: join(dir, `node-${i}`),
        args: ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `node-${i}`, 'nodes.conf')],
      });
      nodes.push(node);
      await node.start();
    }
    const addresses = nodes.map((n) => `127.0.0.1:${n.port}`);
    await new Promise<void>((resolve, reject) => {
      const create = spawn(cli, ['--cluster', 'create', ...addresses, '--cluster-yes'], { stdio: 'pipe' });
      let output = '';
      create.stdout?.on('data', (d: Buffer) => {
        output += d.toString();
      });
      create.stderr?.on('data', (d: Buffer) => {
        output += d.toString();
      });
      create.on('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`redis-cli --cluster create failed:\n${output}`)),
      );
    });
    for (const node of nodes) {
      await waitUntil(`node ${node.port} to report the cluster ok`, async () =>
        (await ask(node.port, (c) => c.call('CLUSTER', 'INFO') as Promise<string>)).includes(
          'cluster_state:ok',
        ),
      );
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url: `redis+cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`,
    ports: nodes.map((n) => n.port),
    stop,
  };
}
