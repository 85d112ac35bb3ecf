import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../support/daemon.ts';
import { summary } from '../support/oracle.ts';
import { type Scenario, startScenario } from '../support/scenario.ts';

let scenario: Scenario | undefined;
afterEach(async () => {
  await scenario?.close();
  scenario = undefined;
});

async function lineCount(path: string): Promise<number> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.split('\n').filter((line) => line !== '').length;
}

describe('Redis comes back empty under a running daemon', () => {
  it('notices the loss, re-creates what delivery needs, and delivers every event without a restart', async () => {
    scenario = await startScenario({ projects: 3, eventsPerMinute: 300, historyMs: 2 * 60_000 });
    const s = scenario;
    const sinkFile = join(s.dir, 'events.ndjson');
    const daemon = s.daemon(await s.config());
    await waitFor('the first delivered events', async () => (await lineCount(sinkFile)) > 0, 60_000);

    // A restart without persistence: killed, its AOF gone, started again empty on the same port.
    await s.redis.server.kill();
    for (const aof of ['appendonlydir', 'appendonly.aof']) {
      await rm(join(s.redis.server.dir, aof), { recursive: true, force: true });
    }
    await s.redis.server.restart();

    // Delivery resumes: events committed after the loss reach the file.
    const afterLoss = await lineCount(sinkFile);
    await waitFor('deliveries after the loss', async () => (await lineCount(sinkFile)) > afterLoss, 60_000);
    const lostLine = async (): Promise<boolean> =>
      (await daemon.logLines()).some(
        (l) => l.level === 'error' && String(l.msg).startsWith('Redis lost its state'),
      );
    await waitFor('the daemon to report the lost Redis state', lostLine, 30_000);

    s.sim.stopTraffic();

    const verdict = await s.settle(async () => [sinkFile], 60_000);
    console.log(`redis state loss: ${summary(verdict)}`);
    expect(verdict.missing).toEqual([]);
    expect(verdict.unexpected).toEqual([]);
    expect(verdict.altered).toEqual([]);
    // Re-read from lookback, but the file sink knows every id it wrote in this process.
    expect(verdict.duplicated).toEqual([]);
    expect(daemon.child.exitCode).toBeNull();
    daemon.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
  }, 180_000);
});
