import { execFileSync } from 'node:child_process';
import { mkdtemp, open, readFile, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Metrics } from '../../src/observability/metrics.ts';
import { DeliveryWorker } from '../../src/pipeline/delivery-worker.ts';
import type { OutboxEvent } from '../../src/pipeline/envelope.ts';
import { RedisKeys } from '../../src/pipeline/keys.ts';
import { OutboxMonitor } from '../../src/pipeline/outbox.ts';
import { FileSink } from '../../src/sinks/file/sink.ts';
import type { Sink, Verdict } from '../../src/sinks/sink.ts';
import { silentLogger } from '../support/logger.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

// A real full filesystem: a 1 MiB tmpfs mounted for this test. Mounting needs root (or CAP_SYS_ADMIN);
// without it the test is skipped and says why.
let mountPoint: string | undefined;
let skipReason: string | undefined;
let redis: TestRedis | undefined;

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'file-sink-full-'));
  if (process.getuid?.() !== 0) {
    skipReason = 'mounting a 1 MiB tmpfs needs root, and this test does not run as root';
  } else {
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'pipe' });
      mountPoint = dir;
    } catch (error) {
      const stderr = String((error as { stderr?: Buffer }).stderr ?? '').trim();
      skipReason = `mount -t tmpfs was refused (${stderr || (error as Error).message})`;
    }
  }
  if (!mountPoint) {
    await rmdir(dir);
    console.log(`file sink full-disk test skipped: ${skipReason}`);
    return;
  }
  redis = await startTestRedis();
});

afterAll(async () => {
  await redis?.stop();
  if (mountPoint) {
    execFileSync('umount', [mountPoint]);
    await rmdir(mountPoint);
  }
});

/** Writes until the filesystem refuses another byte; returns the filler's path. */
async function fill(dir: string): Promise<string> {
  const path = join(dir, 'filler');
  const file = await open(path, 'w');
  try {
    for (const size of [64 * 1024, 1024, 1]) {
      const chunk = Buffer.alloc(size, 0x78);
      for (;;) {
        try {
          const { bytesWritten } = await file.write(chunk);
          if (bytesWritten < size) break;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw error;
        }
      }
    }
  } finally {
    await file.close();
  }
  return path;
}

/** Passes sends through; `close` waits until no send is running and holds the next ones back. */
class SendGate implements Sink {
  readonly name: string;
  readonly #inner: Sink;
  #running: Promise<unknown> = Promise.resolve();
  #held: Promise<void> | undefined;
  #release: (() => void) | undefined;

  constructor(inner: Sink) {
    this.#inner = inner;
    this.name = inner.name;
  }

  async start(): Promise<void> {}
  async close(): Promise<void> {
    this.#held ??= new Promise((resolve) => {
      this.#release = resolve;
    });
    await this.#running.catch(() => undefined);
  }
  open(): void {
    this.#release?.();
    this.#held = undefined;
  }
  async send(batch: readonly OutboxEvent[], signal: AbortSignal): Promise<readonly Verdict[]> {
    while (this.#held) await this.#held;
    const sent = this.#inner.send(batch, signal);
    this.#running = sent;
    return sent;
  }
}

/** The ids of an NDJSON file's lines, after checking it has no NUL byte, ends whole and is all JSON. */
function idsIn(text: string): string[] {
  expect(text).not.toContain('\0');
  expect(text.endsWith('\n')).toBe(true);
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => (JSON.parse(line) as { id: string }).id);
}

describe('file sink on a full filesystem', () => {
  it('acknowledges nothing it could not write whole, retries with a climbing streak, and loses nothing when space returns', async (ctx) => {
    if (!mountPoint || !redis) {
      ctx.skip(skipReason);
      return;
    }
    const keys = new RedisKeys('{full}');
    const path = join(mountPoint, 'events.ndjson');
    const sink = new FileSink(
      { name: 'archive', type: 'file', settings: { path, fsync: true } },
      { log: silentLogger, instanceId: 'i-1' },
    );
    await sink.start();
    const gate = new SendGate(sink);
    const metrics = new Metrics();
    const outbox = new OutboxMonitor(redis.client, keys);
    await outbox.ensureGroup('archive');
    const worker = new DeliveryWorker({
      sink: gate,
      redis: redis.connect(),
      keys,
      instanceId: 'test',
      batchSize: 10,
      retry: { initialMs: 10, maxMs: 100 },
      consumerTimeoutMs: 10_000,
      blockMs: 50,
      metrics,
      log: silentLogger,
    });
    const ids: string[] = [];
    const enqueue = async (from: number, to: number): Promise<void> => {
      for (let i = from; i < to; i++) {
        const id = `e${i}`;
        ids.push(id);
        const line = JSON.stringify({ id, raw: { n: i, pad: 'p'.repeat(300) } });
        await redis?.client.xadd(
          keys.outbox('archive'),
          '*',
          'id',
          id,
          'scope',
          's',
          't',
          '1',
          'seen',
          '2',
          'line',
          line,
        );
      }
    };
    const waiting = async (): Promise<number> => (await outbox.depth('archive')).length;
    const streak = async (): Promise<number> =>
      (await metrics.sinkRetryStreak.get()).values.find((v) => v.labels.sink === 'archive')?.value ?? 0;
    await worker.start();
    try {
      await enqueue(0, 10);
      await expect.poll(waiting, { timeout: 10_000 }).toBe(0);

      const filler = await fill(mountPoint);
      await enqueue(10, 60);
      // The disk is full: nothing more is acknowledged, and the streak climbs for the alert.
      await expect.poll(streak, { timeout: 20_000 }).toBeGreaterThanOrEqual(3);
      // What the sink acknowledged (a few events may fit in the file's last page) is in the file, whole;
      // the rest waits in the outbox.
      // Looked at between two attempts: during one, the file may hold the attempt's first bytes.
      await gate.close();
      const left = await waiting();
      expect(left).toBeGreaterThan(0);
      expect(idsIn(await readFile(path, 'utf8'))).toEqual(ids.slice(0, ids.length - left));
      gate.open();

      await rm(filler);
      await expect.poll(waiting, { timeout: 20_000 }).toBe(0);
      await expect.poll(streak, { timeout: 10_000 }).toBe(0);
    } finally {
      await worker.stop(2_000);
      await sink.close();
    }
    expect(idsIn(await readFile(path, 'utf8'))).toEqual(ids);
  }, 60_000);
});
