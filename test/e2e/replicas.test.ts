import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { summary } from '../support/oracle.ts';
import { type Scenario, startScenario } from '../support/scenario.ts';

let scenario: Scenario | undefined;
afterEach(async () => {
  await scenario?.close();
  scenario = undefined;
});

interface PollSpan {
  readonly scope: string;
  readonly instance: string;
  readonly start: number;
  readonly end: number;
}

/** "poll started"/"poll ended" lines bracket the time a poll held its scope's lease. */
function pollSpans(lines: ReadonlyArray<Record<string, unknown>>): PollSpan[] {
  const open = new Map<string, { scope: string; instance: string; start: number }>();
  const spans: PollSpan[] = [];
  for (const line of lines) {
    const key = `${line.instance}/${line.poll}`;
    const at = Date.parse(String(line.time));
    if (line.msg === 'poll started')
      open.set(key, { scope: String(line.scope), instance: String(line.instance), start: at });
    if (line.msg === 'poll ended') {
      const started = open.get(key);
      if (started) spans.push({ ...started, end: at });
      open.delete(key);
    }
  }
  return spans;
}

describe('two daemons against one Redis', () => {
  it('never poll one scope at the same time, share the work, and lose nothing', async () => {
    scenario = await startScenario({
      projects: 6,
      eventsPerMinute: 300,
      historyMs: 3 * 60_000,
      // Slow responses stretch polls, so overlapping polls would show if the lease did not hold.
      sim: { faults: { slowRate: 0.3, slowDelayMs: 250, serverErrorRate: 0.05 } },
    });
    const s = scenario;
    const config = await s.config({ sinkPath: join(s.dir, 'events-{instance}.ndjson') });
    const a = s.daemon(config, { INSTANCE_ID: 'replica-a' });
    const b = s.daemon(config, { INSTANCE_ID: 'replica-b' });
    await new Promise((r) => setTimeout(r, 8_000));
    s.sim.stopTraffic();

    const files = async (): Promise<string[]> =>
      (await readdir(s.dir)).filter((f) => f.startsWith('events-')).map((f) => join(s.dir, f));
    const verdict = await s.settle(files, 45_000);
    a.kill('SIGTERM');
    b.kill('SIGTERM');
    expect([await a.exited, await b.exited]).toEqual([0, 0]);

    const spans = pollSpans([...(await a.logLines()), ...(await b.logLines())]);
    const overlaps: string[] = [];
    for (const x of spans) {
      for (const y of spans) {
        if (x !== y && x.scope === y.scope && x.instance < y.instance && x.start < y.end && y.start < x.end) {
          overlaps.push(
            `${x.scope}: ${x.instance} ${x.start}-${x.end} and ${y.instance} ${y.start}-${y.end}`,
          );
        }
      }
    }
    const byInstance = (instance: string): number => spans.filter((p) => p.instance === instance).length;
    console.log(
      `replicas: ${summary(verdict)}; polls a=${byInstance('replica-a')} b=${byInstance('replica-b')}, ` +
        `max concurrent requests per scope ${s.sim.maxConcurrentPerScope()}`,
    );
    expect(overlaps).toEqual([]);
    expect(s.sim.maxConcurrentPerScope()).toBe(1);
    expect(byInstance('replica-a')).toBeGreaterThan(5);
    expect(byInstance('replica-b')).toBeGreaterThan(5);
    expect(verdict.missing).toEqual([]);
    expect(verdict.duplicated).toEqual([]);
    expect(verdict.unexpected).toEqual([]);
    expect((await files()).length).toBe(2);
  }, 300_000);
});
