/**
 * One torture run: a world under a seeded fault schedule, then calm, then the oracle.
 *
 *   1. faults: kill -9s of replicas, Redis restarts and pauses, provider and sink episodes (schedule.ts);
 *   2. liveness: once the faults end, every scope's checkpoint lag and every outbox's oldest event must
 *      come back under a bound within a time limit, read from a replica's /metrics;
 *   3. conservation, integrity, duplicates: traffic stops, the last late arrivals show up, the outboxes
 *      drain, and every sink is read back and judged against the simulators' truth (oracle.ts).
 *
 * It prints one summary line per property with figures, and throws on any loss, alteration, duplicate
 * at an idempotent sink, liveness miss, unplanned exit or leaked secret, with the seed, the fault
 * schedule that ran and Redis diagnostics in the message.
 */
import { readFile } from 'node:fs/promises';
import { Chaos } from './chaos.ts';
import {
  deadLetters,
  diagnose,
  type Health,
  health,
  outboxes,
  readSinks,
  S3Reader,
  scrapeAny,
} from './observe.ts';
import { judgeSink, type SinkVerdict, type Truths, verdictLine } from './oracle.ts';
import type { TortureProfile } from './profile.ts';
import { buildSchedule, describeAction } from './schedule.ts';
import { CLOUDSCALE_LATE_MAX_MS, STACKIT_LATE_MAX_MS, STACKIT_SETTLE_LAG_MS, World } from './world.ts';

export interface TortureReport {
  readonly lines: string[];
  readonly failures: string[];
  readonly verdicts: readonly SinkVerdict[];
  readonly eventsChecked: number;
  readonly kills: number;
  readonly livenessMs: number | undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

export async function runTorture(
  profile: TortureProfile,
  print: (line: string) => void = console.log,
): Promise<TortureReport> {
  const schedule = buildSchedule(profile);
  const replay = `TORTURE_SEED=${profile.seed} TORTURE_PROFILE=${profile.name} TORTURE_MINUTES=${profile.faultMs / 60_000} TORTURE_REPLICAS=${profile.replicas}`;
  const header =
    `torture seed ${profile.seed}: ${profile.name} profile, ${seconds(profile.faultMs)} of faults, ` +
    `${profile.replicas} replicas, ${schedule.faults.length} scheduled faults, provider clock ` +
    `${schedule.skewMs >= 0 ? '+' : ''}${seconds(schedule.skewMs)}; replay: ${replay} npm run test:torture`;
  print(header);

  const world = await World.start(profile, schedule.skewMs);
  const chaos = new Chaos(world, schedule.faults);
  const s3 = new S3Reader(world);
  const failures: string[] = [];
  let failed = true;
  try {
    world.ensureAllRunning();
    const faultsStartedAt = Date.now();
    await chaos.run();
    await sleep(faultsStartedAt + profile.faultMs - Date.now());
    await chaos.calm();
    const faultsEndedAt = Date.now();

    // Liveness: lag and outboxes back under the bound, as an operator's dashboard would show it.
    const bound = profile.lagBoundS;
    let last: Health | undefined;
    let livenessMs: number | undefined;
    while (Date.now() - faultsEndedAt < profile.livenessLimitMs) {
      const scraped = await scrapeAny(world);
      if (scraped) {
        last = health(world, scraped.samples);
        const lags = Object.values(last.lagS);
        const ages = Object.values(last.outboxAgeS);
        if (
          lags.every((lag) => lag !== undefined && lag <= bound) &&
          ages.every((age) => age !== undefined && age <= bound)
        ) {
          livenessMs = Date.now() - faultsEndedAt;
          break;
        }
      }
      await sleep(1_000);
    }
    if (livenessMs === undefined) {
      failures.push(
        `liveness: not every scope's lag and outbox age came under ${bound} s within ${seconds(profile.livenessLimitMs)} ` +
          `after the faults ended; last seen ${JSON.stringify(last)}`,
      );
    }
    const lagAtLiveness = last
      ? Math.max(...Object.values(last.lagS).map((v) => v ?? Number.NaN))
      : Number.NaN;

    // Stop traffic at the daemons' clock, then wait for the last late arrivals to become visible.
    const stoppedAt = Date.now();
    world.sim.stopTraffic(stoppedAt);
    world.sim.cloudscale.stopTraffic();
    await sleep(
      Math.max(STACKIT_LATE_MAX_MS - Math.min(0, schedule.skewMs), CLOUDSCALE_LATE_MAX_MS) +
        STACKIT_SETTLE_LAG_MS +
        1_000,
    );
    const truths: Truths = {
      stackit: world.stackitProjects.flatMap((id) =>
        world.sim.truth.events({
          scope: { kind: 'project', id },
          fromMs: world.trafficStartMs - 60_000,
          visibleBy: world.sim.clock.simNow(),
        }),
      ),
      cloudscale: world.cloudscaleProjects.flatMap((p) => world.sim.cloudscale.truth({ project: p.name })),
    };
    const judgeAll = async (): Promise<SinkVerdict[]> => {
      const records = await readSinks(world, s3);
      return [
        judgeSink('file', truths, records.file, 'event-within-where'),
        judgeSink('loki', truths, records.loki, 'event'),
        judgeSink('es', truths, records.es, 'event'),
        judgeSink('s3', truths, records.s3, 'event'),
      ];
    };

    // Settle: every sink holds every event and every outbox is empty.
    const settleStarted = Date.now();
    let verdicts = await judgeAll();
    let drained = false;
    while (Date.now() - settleStarted < profile.settleLimitMs) {
      const boxes = await outboxes(world);
      drained = Object.values(boxes).every((b) => b.length === 0 && b.pending === 0);
      verdicts = await judgeAll();
      if (drained && verdicts.every((v) => v.missing.length === 0)) break;
      await sleep(2_000);
    }
    const settleMs = Date.now() - settleStarted;
    // A little longer: a late redelivery would show now.
    await sleep(3_000);
    verdicts = await judgeAll();
    const boxes = await outboxes(world);
    const letters = await deadLetters(world);
    if (!drained)
      failures.push(
        `drain: outboxes not empty ${seconds(profile.settleLimitMs)} after traffic stopped: ${JSON.stringify(boxes)}`,
      );

    // ---- the summary, one line per property ----
    const lines: string[] = [header];
    const eventsChecked = truths.stackit.length + truths.cloudscale.length;
    const kills = [...chaos.counts].filter(([k]) => k === 'kill').reduce((n, [, c]) => n + c, 0);
    const killAll = chaos.counts.get('kill-all') ?? 0;
    const processes = world.replicas.reduce((n, r) => n + r.incarnations, 0);
    const stats = world.sim.stats();
    const byStatus = stats.byStatus as Record<string, number>;
    const log = world.sim.requestLog;
    const faultCount = (prefix: string) => log.filter((r) => r.fault?.startsWith(prefix)).length;
    const sinkInjected = (server: { faults: { injected: Map<string, number> } }) =>
      [...server.faults.injected].map(([k, n]) => `${k}×${n}`).join(' ') || 'none';
    const episodes = [...chaos.counts]
      .filter(([k]) => !['kill', 'kill-all', 'redis-restart', 'redis-pause'].includes(k))
      .map(([k, n]) => `${k}×${n}`)
      .join(', ');
    lines.push(
      `torture faults: ${kills + killAll} kill -9 (${killAll} of every replica at once; ${processes} daemon processes started), ` +
        `Redis ${chaos.counts.get('redis-restart') ?? 0} restarts from AOF and ${chaos.counts.get('redis-pause') ?? 0} pauses ` +
        `(longest outage ${seconds(chaos.redisOutageMs)}); episodes: ${episodes}. At the wire: provider ${stats.requests} requests, ` +
        `429×${byStatus['429'] ?? 0}, 5xx×${Object.entries(byStatus)
          .filter(([s]) => s.startsWith('5'))
          .reduce((n, [, c]) => n + c, 0)}, ` +
        `no answer×${byStatus['0'] ?? 0}, slow×${faultCount('slow')}, malformed×${faultCount('malformed')}, ` +
        `repeated cursor×${faultCount('repeat-cursor')}, cursor refused×${faultCount('cursor-rejected')}, ` +
        `truncated×${world.proxy.stats.truncated}; loki ${sinkInjected(world.loki)}; es ${sinkInjected(world.es)}; s3 ${sinkInjected(world.s3)}`,
    );

    const lost = verdicts.map((v) => `${v.sink} ${v.missing.length}`).join(', ');
    const totalLost = verdicts.reduce((n, v) => n + v.missing.length, 0);
    lines.push(
      `torture conservation: ${eventsChecked} events (stackit ${truths.stackit.length}, cloudscale ${truths.cloudscale.length}) ` +
        `checked in ${verdicts.length} sinks: lost ${totalLost} (${lost}); dead-lettered ${letters.length}; ` +
        `settled ${seconds(settleMs)} after the late arrivals`,
    );
    const records = verdicts.reduce((n, v) => n + v.records, 0);
    const altered = verdicts.reduce((n, v) => n + v.altered.length, 0);
    const checksum = verdicts.reduce((n, v) => n + v.checksumMismatches.length, 0);
    const unexpected = verdicts.reduce((n, v) => n + v.unexpected.length, 0);
    lines.push(
      `torture integrity: ${records} stored records checked byte for byte: altered ${altered}, ` +
        `checksum mismatches ${checksum}, unknown events ${unexpected}`,
    );
    const dup = verdicts.map((v) => `${v.sink} ${v.duplicated.length}`).join(', ');
    const redelivered = verdicts.reduce((n, v) => n + v.redelivered.length, 0);
    lines.push(
      `torture duplicates: at idempotent sinks ${verdicts.reduce((n, v) => n + v.duplicated.length, 0)} (${dup}; ` +
        `the file sink within each replica's file); at-least-once across the replicas' files ${redelivered} ` +
        `(written by a replica that died before acknowledging, then by the one that took its entries over)`,
    );
    lines.push(
      livenessMs === undefined
        ? `torture liveness: NOT reached within ${seconds(profile.livenessLimitMs)} after the faults ended`
        : `torture liveness: ${seconds(livenessMs)} after the faults ended every scope's lag was ≤ ${bound} s ` +
            `(worst ${lagAtLiveness.toFixed(1)} s) and every outbox's oldest event ≤ ${bound} s (limit ${seconds(profile.livenessLimitMs)}); ` +
            `after traffic stopped every outbox drained and every sink held every event within ${seconds(settleMs)}`,
    );

    const logPaths = await world.daemonLogPaths();
    let leaked = 0;
    let loopsDetected = 0;
    let longestPoll = 0;
    let pauses = 0;
    const secrets = world.secrets();
    for (const path of logPaths) {
      const text = await readFile(path, 'utf8');
      for (const secret of secrets) if (text.includes(secret)) leaked++;
      loopsDetected += text.split('pagination loop').length - 1;
      pauses += text.split('polling of ').length - 1;
      for (const m of text.matchAll(/"pages":(\d+)/g)) longestPoll = Math.max(longestPoll, Number(m[1]));
    }
    const loopsInjected = log.filter((r) => r.fault === 'repeat-cursor' && r.cursorPresent).length;
    const crashes = world.unplannedExits.filter((e) => !e.redisDown);
    lines.push(
      `torture stability: ${crashes.length} unplanned exits (+${world.unplannedExits.length - crashes.length} ` +
        `that could not start while Redis was down); pagination loops: ${loopsInjected} injected on cursor ` +
        `pages, ${loopsDetected} detected, longest poll ${longestPoll} pages; polls paused on a full outbox ${pauses}; ` +
        `secrets in ${logPaths.length} logs: ${leaked}`,
    );

    for (const v of verdicts) {
      const problems = [
        ...v.missing.map((m) => `lost ${m}`),
        ...v.altered.map((m) => `altered ${m}`),
        ...v.checksumMismatches.map((m) => `checksum ${m}`),
        ...v.unexpected.map((m) => `unknown ${m}`),
        ...v.duplicated.map((m) => `duplicated ${m}`),
      ];
      if (problems.length > 0) {
        failures.push(`${verdictLine(v)}\n    ${problems.slice(0, 15).join('\n    ')}`);
      }
    }
    if (letters.length > 0) failures.push(`dead-lettered:\n    ${letters.slice(0, 15).join('\n    ')}`);
    for (const crash of crashes) {
      failures.push(
        `replica-${crash.slot} exited on its own (code ${crash.code}) at ${new Date(crash.atMs).toISOString()}: ${crash.why} (${crash.logPath})`,
      );
    }
    if (leaked > 0) failures.push(`a secret appeared in the daemon logs ${leaked} times`);
    if (loopsInjected >= 3 && loopsDetected === 0) {
      failures.push(`${loopsInjected} repeated cursors were served and no pagination loop was reported`);
    }
    for (const line of lines.slice(1)) print(line);
    for (const v of verdicts) print(`  ${verdictLine(v)}`);

    if (failures.length > 0) {
      throw new Error(
        `torture run failed (seed ${profile.seed}; replay: ${replay} npm run test:torture):\n` +
          `${failures.join('\n')}\n\nfault schedule that ran:\n${chaos.log()}\n\n` +
          `unplanned exits: ${JSON.stringify(world.unplannedExits)}\n\nRedis:\n${await diagnose(world).catch(String)}\n\n` +
          `daemon logs and sink files kept in ${world.dir}`,
      );
    }
    failed = false;
    return { lines, failures, verdicts, eventsChecked, kills: kills + killAll, livenessMs };
  } catch (error) {
    if (!(error instanceof Error && error.message.startsWith('torture run failed'))) {
      // Something broke outside the judged properties: still say which run and what had happened.
      const what = error instanceof Error ? (error.stack ?? error.message) : String(error);
      throw new Error(
        `torture run aborted (seed ${profile.seed}; replay: ${replay} npm run test:torture): ${what}\n\n` +
          `fault schedule that ran:\n${chaos.log()}\n\nscheduled:\n${schedule.faults
            .map((f) => `  +${seconds(f.atMs)} ${describeAction(f.action)}`)
            .join('\n')}\n\nRedis:\n${await diagnose(world).catch(String)}\n\nkept in ${world.dir}`,
      );
    }
    throw error;
  } finally {
    await world.close(failed || process.env.KEEP_E2E !== undefined);
  }
}
