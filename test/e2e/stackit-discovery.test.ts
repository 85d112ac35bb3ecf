import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { TruthEvent } from '../../src/simulator/index.ts';
import { waitFor } from '../support/daemon.ts';
import { summary } from '../support/oracle.ts';
import { type Scenario, startScenario } from '../support/scenario.ts';

let scenario: Scenario | undefined;
afterEach(async () => {
  await scenario?.close();
  scenario = undefined;
});

const logText = (lines: ReadonlyArray<Record<string, unknown>>): string =>
  lines.map((l) => JSON.stringify(l)).join('\n');

describe('STACKIT end to end: service-account key and discovery', () => {
  it('polls every folder and project of an organization with short-lived tokens, through revocation, a new project and one that leaves and comes back', async () => {
    scenario = await startScenario({
      projects: 2,
      eventsPerMinute: 90,
      historyMs: 3 * 60_000,
      // Late arrivals up to 2 s (within the 20 s overlap), so settling takes little.
      delay: { minMs: 100, maxMs: 1_000, lateFraction: 0.1, lateMaxMs: 2_000 },
      sim: { faults: { serverErrorRate: 0.05 } },
    });
    const s = scenario;
    const rm = s.sim.resourceManager;
    const [p1, p2] = s.projects as [string, string];
    const org = rm.addOrganization({ eventsPerMinute: 30 });
    const folder = rm.addFolder(org.id, { eventsPerMinute: 30, labels: { team: 'infra' } });
    rm.addProject(folder.id, { id: p1 });
    rm.addProject(org.id, { id: p2 });
    // A project excluded by label: never polled.
    const excluded = rm.addProject(folder.id, { eventsPerMinute: 30, labels: { audit: 'off' } });
    // Access tokens live 4 s: the daemon must keep minting new ones before they expire. The token
    // endpoint and the Resource Manager fail now and then too.
    s.sim.identity.accessTokenTtlMs = 4_000;
    s.sim.identityFaults.set({ serverErrorRate: 0.15, resetRate: 0.05 });
    s.sim.resourceManagerFaults.set({ serverErrorRate: 0.1, resetRate: 0.05 });
    const key = await s.serviceAccountKey();
    const config = await s.config({
      auth: key.auth,
      scopesText: `  - provider: sim
    organization: ${org.id}
    discover: { interval: 2s, gracePeriod: 3s, exclude: [{ labels: { audit: "off" } }] }`,
    });
    const daemon = s.daemon(config);
    const polled = (id: string) =>
      s.sim.requestLog.some((r) => r.route === 'stackit.audit-log' && r.scope?.id === id);
    await waitFor('every discovered scope polled', () => [org.id, folder.id, p1, p2].every(polled), 20_000);

    // A new project shows up: discovered at the next walk and read from the lookback.
    const p3 = rm.addProject(folder.id, { eventsPerMinute: 90 });
    // Every access token is revoked: 401s, one fresh token each, and on.
    s.sim.identity.revokeAccessTokens();
    await waitFor('the new project polled', () => polled(p3.id), 15_000);

    // p2 leaves the organization (its log stays readable): polled through the grace period, then not.
    rm.remove(p2, { keepAuditLog: true });
    await waitFor(
      'p2 declared gone',
      async () => (await daemon.logLines()).some((l) => l.change === 'gone' && String(l.scope).endsWith(p2)),
      20_000,
    );
    // Judged in the daemon's own log, whose order is causal: after "gone", no poll of p2 starts (one in
    // flight may finish) while p1 is polled three more times, however slowly this machine runs them.
    const afterGone = async (): Promise<Array<Record<string, unknown>>> => {
      const lines = await daemon.logLines();
      return lines.slice(lines.findIndex((l) => l.change === 'gone' && String(l.scope).endsWith(p2)) + 1);
    };
    const pollsOf = (lines: Array<Record<string, unknown>>, id: string): number =>
      lines.filter((l) => l.msg === 'poll started' && String(l.scope).endsWith(id)).length;
    await waitFor('three more polls of p1', async () => pollsOf(await afterGone(), p1) >= 3, 60_000);
    expect(pollsOf(await afterGone(), p2)).toBe(0);
    // It comes back: polling resumes from its checkpoint, and nothing of the gap is lost.
    const lastRequestOf = (id: string): number =>
      Math.max(0, ...s.sim.requestLog.filter((r) => r.scope?.id === id).map((r) => r.startedAtMs));
    const beforeBack = lastRequestOf(p2);
    rm.addProject(org.id, { id: p2 });
    await waitFor('p2 polled again', () => lastRequestOf(p2) > beforeBack, 60_000);

    s.sim.stopTraffic();
    const scopes = [
      { kind: 'organization', id: org.id },
      { kind: 'folder', id: folder.id },
      { kind: 'project', id: p1 },
      { kind: 'project', id: p2 },
      { kind: 'project', id: p3.id },
    ];
    const truth = (): TruthEvent[] =>
      scopes.flatMap((scope) =>
        s.sim.truth.events({ scope, fromMs: s.trafficStartMs, visibleBy: s.sim.clock.simNow() }),
      );
    const verdict = await s.settle(async () => [join(s.dir, 'events.ndjson')], 45_000, truth);
    const identity = s.sim.identity.stats();
    console.log(
      `discovery e2e: ${summary(verdict)}; tokens issued ${identity.issued}, 401s ${identity.unauthorized}`,
    );
    expect(verdict.expected).toBeGreaterThan(1_000);
    expect(verdict.missing).toEqual([]);
    expect(verdict.duplicated).toEqual([]);
    expect(verdict.unexpected).toEqual([]);
    expect(verdict.altered).toEqual([]);
    expect(polled(excluded.id)).toBe(false);
    // Tokens were renewed (several minted) and the revocation was answered with fresh ones.
    expect(identity.issued).toBeGreaterThanOrEqual(4);
    expect(identity.unauthorized).toBeGreaterThan(0);

    daemon.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    const log = logText(await daemon.logLines());
    const seen = s.sim.identity.credentialsSeen();
    for (const secret of [...seen.assertions, ...seen.accessTokens]) expect(log).not.toContain(secret);
    expect(log).not.toContain((key.doc.credentials.privateKey as string).split('\n')[2]);
    expect(log).toContain('minting a new one and retrying once');
  }, 300_000);
});
