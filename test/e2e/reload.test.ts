import { readFile, writeFile } from 'node:fs/promises';
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

describe('config reload without a restart', () => {
  it('adds scopes and sinks on SIGHUP, rejects an invalid file, drops a scope on a file change, loses nothing', async () => {
    scenario = await startScenario({ projects: 2, eventsPerMinute: 300, historyMs: 2 * 60_000 });
    const s = scenario;
    const [p1, p2] = s.projects as [string, string];
    const archive = join(s.dir, 'events.ndjson');
    const extra = join(s.dir, 'extra.ndjson');
    const path = await s.config({ projects: [p1] });
    const base = await readFile(path, 'utf8');
    const daemon = s.daemon(path);
    const reloads = async (pattern: RegExp): Promise<number> =>
      (await daemon.logLines()).filter((l) => pattern.test(String(l.msg))).length;
    await waitFor(
      'the first events of p1',
      async () => (await readFile(archive, 'utf8').catch(() => '')).length > 0,
      20_000,
    );

    // SIGHUP: a second scope and a second sink, plus a daemon setting that needs a restart.
    const withP2 = base
      .replace(/^scopes:\n/m, `scopes:\n  - { provider: sim, project: ${p2} }\n`)
      .replace(/^sinks:\n/m, `sinks:\n  - name: extra\n    type: file\n    path: ${extra}\n`)
      .replace('concurrency: 4,', 'concurrency: 5,');
    await writeFile(path, withP2);
    daemon.kill('SIGHUP');
    await waitFor(
      'the SIGHUP reload',
      async () => (await reloads(/^config reloaded \(SIGHUP\)/)) === 1,
      15_000,
    );
    // Log lines are written asynchronously: wait for it rather than read the file at one instant.
    await waitFor(
      'the restart-needed warning',
      async () =>
        (await reloads(/daemon\.poll\.concurrency changed; daemon settings take effect after a restart/)) ===
        1,
      60_000,
    );

    // An invalid file is rejected with its problem and line; the running config carries on.
    await writeFile(path, withP2.replace('type: file', 'type: flie'));
    await waitFor(
      'the rejected reload',
      async () => (await reloads(/^config reload \(file change\) rejected/)) === 1,
      15_000,
    );
    const rejected = (await daemon.logLines()).find((l) => /rejected/.test(String(l.msg)));
    expect(String(rejected?.msg)).toMatch(/sinks\[0\]\.type \(line \d+, column \d+\)/);

    // A file change alone (no signal): p1 leaves the config and stops being polled.
    await writeFile(
      path,
      withP2.replace(
        `  - { provider: sim, project: ${p1} }
`,
        '',
      ),
    );
    const text = await readFile(path, 'utf8');
    expect(text).not.toContain(p1);
    await waitFor(
      'the file-change reload',
      async () => (await reloads(/^config reloaded \(file change\)/)) === 1,
      15_000,
    );
    // Judged in the daemon's own log, whose order is causal: once the reload is logged, no poll of p1
    // starts again (one in flight may finish), while p2 goes on being polled: three more of its polls
    // give the schedule every chance to run p1, however slowly this machine runs them.
    const afterReload = async (): Promise<Array<Record<string, unknown>>> => {
      const lines = await daemon.logLines();
      return lines.slice(lines.findIndex((l) => /^config reloaded \(file change\)/.test(String(l.msg))) + 1);
    };
    const polls = (lines: Array<Record<string, unknown>>, project: string): number =>
      lines.filter((l) => l.msg === 'poll started' && String(l.scope).endsWith(project)).length;
    await waitFor('three more polls of p2', async () => polls(await afterReload(), p2) >= 3, 60_000);
    expect(polls(await afterReload(), p1)).toBe(0);

    s.sim.stopTraffic();
    const p2Truth = () =>
      s.sim.truth.events({
        scope: { kind: 'project', id: p2 },
        fromMs: s.trafficStartMs,
        visibleBy: s.sim.clock.simNow(),
      });
    const inArchive = await s.settle(async () => [archive], 45_000, p2Truth);
    const inExtra = await s.settle(async () => [extra], 45_000, p2Truth);
    console.log(`reload: archive ${summary(inArchive)}; extra ${summary(inExtra)}`);
    // p2, added by the reload, is in both sinks completely; p1's events are in the archive once.
    expect(inArchive.missing).toEqual([]);
    expect(inExtra.missing).toEqual([]);
    expect(inArchive.duplicated).toEqual([]);
    expect(inExtra.duplicated).toEqual([]);
    // Between the two reloads p1 fed every sink, extra included; nothing else is in extra.
    const p1Ids = new Set(
      s.sim.truth.events({ scope: { kind: 'project', id: p1 }, fromMs: s.trafficStartMs }).map((e) => e.id),
    );
    expect(inExtra.unexpected.filter((id) => !p1Ids.has(id))).toEqual([]);
    expect(inArchive.unexpected.filter((id) => !p1Ids.has(id))).toEqual([]);
    daemon.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
  }, 300_000);
});
