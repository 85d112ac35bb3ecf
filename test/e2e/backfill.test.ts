import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { TruthEvent } from '../../src/simulator/index.ts';
import { startCli, waitFor } from '../support/daemon.ts';
import { summary } from '../support/oracle.ts';
import { type Scenario, startScenario } from '../support/scenario.ts';

let scenario: Scenario | undefined;
afterEach(async () => {
  await scenario?.close();
  scenario = undefined;
});

const DAY = 86_400_000;

describe('backfill end to end', () => {
  it('reads 90 days of three scopes in 24 h windows, survives kill -9 mid-way, and ships every event once', async () => {
    scenario = await startScenario({
      projects: 3,
      // Sparse history (about 40 events a day per scope): still 90+ real windows of real requests.
      eventsPerMinute: 0.03,
      historyMs: 91 * DAY,
      delay: { minMs: 0, maxMs: 500, lateFraction: 0, lateMaxMs: 500 },
      // Every request takes 40 ms (so the kill lands mid-way), and a few fail.
      sim: { faults: { slowRate: 1, slowDelayMs: 40, serverErrorRate: 0.03 } },
    });
    const s = scenario;
    const r = s.redis.client;
    const config = await s.config({
      lookback: '10m',
      extraDaemon: '  backfill: { concurrency: 2, slice: 3s }',
    });
    const env = { SIM_URL: s.sim.url, SIM_TOKEN: s.sim.token };
    const first = s.daemon(config);
    await waitFor(
      'a first live poll of every scope',
      async () =>
        (
          await Promise.all(
            s.projects.map((id) => r.exists(`{auditlog}:scope:stackit:project:${id}:checkpoint`)),
          )
        ).every((n) => n === 1),
      20_000,
    );

    const cli = startCli(
      ['backfill', '-c', config, ...s.projects.flatMap((id) => ['--scope', id]), '--since', '90d'],
      env,
    );
    const backfillRequests = () =>
      s.sim.requestLog.filter(
        (q) => q.route === 'stackit.audit-log' && Date.parse(q.startRange ?? '') < Date.now() - 2 * DAY,
      );
    await waitFor('a third of the backfill', () => backfillRequests().length >= 90, 30_000, 20);
    first.kill('SIGKILL');
    await first.exited;
    const atKill = backfillRequests().length;
    let cliDone = false;
    void cli.exited.then(() => {
      cliDone = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(cliDone).toBe(false); // following survives the shipper's death: it only watches Redis

    const second = s.daemon(config);
    // The test's own timeout is the hang detector: on a loaded machine the backfill takes what it takes.
    const code = await cli.exited;
    const output = cli.output();
    expect(code, `${output.stdout}\n${output.stderr}\n${await s.diagnose()}`).toBe(0);
    expect(output.stdout).toContain('backfill complete for 3 scopes');
    expect(output.stdout).toMatch(/backfill stackit:project:\S+: \d+\/90 days \(\d+%\), read up to /);
    for (const id of s.projects) expect(output.stdout).toContain(`stackit:project:${id}: backfill of `);

    // What each scope's backfill covers, from its record; the live lane covers the rest.
    const from = new Map<string, number>();
    for (const id of s.projects)
      from.set(id, Number(await r.hget(`{auditlog}:backfills:stackit:project:${id}`, 'fromMs')));
    for (const fromMs of from.values()) expect(fromMs).toBeLessThan(Date.now() - 89 * DAY);
    s.sim.stopTraffic();
    const truth = (): TruthEvent[] =>
      s.projects.flatMap((id) =>
        s.sim.truth.events({
          scope: { kind: 'project', id },
          fromMs: from.get(id),
          visibleBy: s.sim.clock.simNow(),
        }),
      );
    const verdict = await s.settle(async () => [join(s.dir, 'events.ndjson')], 45_000, truth);
    console.log(
      `backfill e2e: ${summary(verdict)}; ${atKill} backfill requests before kill -9, ${backfillRequests().length} in all`,
    );
    expect(verdict.expected).toBeGreaterThan(8_000);
    expect(verdict.missing).toEqual([]);
    expect(verdict.duplicated).toEqual([]);
    expect(verdict.unexpected).toEqual([]);
    expect(verdict.altered).toEqual([]);

    // No event was committed twice, by the two lanes or by a re-read after the kill (the file sink's
    // own dedupe would hide that, so count at the commit).
    let committed = 0;
    for (const id of s.projects) {
      for (const key of [`stackit:project:${id}`, `stackit:project:${id}#backfill`]) {
        committed += Number((await r.hget(`{auditlog}:scope:${key}:checkpoint`, 'committed')) ?? 0);
      }
    }
    expect(committed).toBe(verdict.expected);

    // 90+ real 24 h windows per scope, oldest first (a window cut by the kill may be read again).
    for (const id of s.projects) {
      const floor = Number(await r.hget(`{auditlog}:backfills:stackit:project:${id}`, 'floorMs'));
      const windows = s.sim.requestLog
        .filter((q) => q.route === 'stackit.audit-log' && q.scope?.id === id && q.status === 200)
        .filter((q) => Date.parse(q.endRange as string) <= floor)
        .map((q) => [Date.parse(q.startRange as string), Date.parse(q.endRange as string)] as const);
      expect(new Set(windows.map(([a, b]) => `${a}-${b}`)).size).toBeGreaterThanOrEqual(90);
      for (const [start, end] of windows) expect(end - start).toBeLessThanOrEqual(DAY);
      for (let i = 1; i < windows.length; i++)
        expect(windows[i]![0]).toBeGreaterThanOrEqual(windows[i - 1]![0]);
    }
    const log = (await second.logLines()).map((l) => String(l.msg));
    expect(log.some((m) => /^backfill of stackit:project:\S+ complete/.test(m))).toBe(true);
    second.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  }, 300_000);
});
