import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withEnv } from '../../../src/config/fields.ts';
import { type Simulator, startSimulator } from '../../../src/simulator/index.ts';
import { stackitProviderSchema, stackitScopeSchema } from '../../../src/sources/stackit/config.ts';
import { LinkReconciler } from '../../../src/sources/stackit/telemetry/reconciler.ts';
import { memoryLogger } from '../../support/logger.ts';

let nowMs = Date.UTC(2026, 11, 2, 11, 0, 0);
let sim: Simulator;

beforeAll(async () => {
  sim = await startSimulator({ seed: 81, now: () => nowMs });
});
afterAll(async () => {
  await sim.close();
});

describe('the daemon’s link reconciler (telemetry.reconcile)', () => {
  it('applies on the leader only, once per interval, writing only when the plan has changes', async () => {
    const org = sim.resourceManager.addOrganization().id;
    sim.resourceManager.addProject(org);
    const settings = withEnv({ SIM_TOKEN: sim.token, RECEIVER: 'receiver-token-x' }, () =>
      stackitProviderSchema.parse({
        resourceManagerUrl: sim.url,
        auth: { token: '${SIM_TOKEN}' },
        retry: { attempts: 1 },
        telemetry: {
          linkApiUrl: sim.url,
          routerApiUrl: sim.url,
          routerProject: '2c3d4e5f-6071-4b8c-9d0e-1f2a3b4c5d6e',
          destination: { url: 'https://receiver.example.com', bearerToken: '${RECEIVER}' },
          reconcile: '1h',
        },
      }),
    );
    expect(settings.telemetry?.reconcile).toBe(3_600_000);
    const scope = stackitScopeSchema.parse({ organization: org, discover: true });
    let leader = false;
    const { log, lines } = memoryLogger();
    const reconciler = new LinkReconciler({
      provider: 'stackit-prod',
      settings,
      scopes: () => [scope],
      instanceId: 'test',
      isLeader: async () => leader,
      intervalMs: 3_600_000,
      log,
      now: () => nowMs,
    });
    const writes = () => sim.telemetry.requests().filter((r) => r.method !== 'GET');

    await reconciler.tick();
    expect(sim.telemetry.requests()).toEqual([]); // not the leader: nothing at all

    leader = true;
    await reconciler.tick();
    expect(sim.telemetry.links()).toHaveLength(2); // the organization and its project
    expect(lines().some((l) => String(l.msg).includes('link organization'))).toBe(true);

    // Within the interval: no round. After it: a round that only reads, the setup has converged.
    sim.telemetry.resetRequests();
    await reconciler.tick();
    expect(sim.telemetry.requests()).toEqual([]);
    nowMs += 3_600_000;
    await reconciler.tick();
    expect(sim.telemetry.requests().length).toBeGreaterThan(0);
    expect(writes()).toEqual([]);

    // A project that appears is linked at the next round.
    const added = sim.resourceManager.addProject(org).id;
    nowMs += 3_600_000;
    await reconciler.tick();
    expect(sim.telemetry.links().map((l) => l.containerId)).toContain(added);

    // An API failure is logged, not thrown, and the next round tries again.
    sim.telemetryFaults.enqueue({ type: 'status', status: 503 });
    nowMs += 3_600_000;
    await reconciler.tick();
    expect(
      lines().some((l) => l.level === 50 && String(l.msg).includes('telemetry link reconciliation')),
    ).toBe(true);
    await reconciler.stop();
    expect(JSON.stringify(lines())).not.toContain('receiver-token-x');
  });
});
