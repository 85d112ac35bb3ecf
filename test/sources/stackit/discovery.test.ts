import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { withEnv } from '../../../src/config/fields.ts';
import { type Simulator, startSimulator } from '../../../src/simulator/index.ts';
import { stackitProviderSchema, stackitScopeSchema } from '../../../src/sources/stackit/config.ts';
import { StackitSource } from '../../../src/sources/stackit/source.ts';
import { silentLogger } from '../../support/logger.ts';

let sim: Simulator;
let source: StackitSource;

beforeEach(async () => {
  sim = await startSimulator({ seed: 11 });
  const settings = withEnv({ SIM_TOKEN: sim.token }, () =>
    stackitProviderSchema.parse({
      auditLogUrl: sim.url,
      resourceManagerUrl: sim.url,
      auth: { token: '${SIM_TOKEN}' },
      retry: { attempts: 3, initialBackoff: '10ms', maxBackoff: '20ms' },
    }),
  );
  source = new StackitSource(
    { name: 'sim', type: 'stackit', settings },
    { log: silentLogger, instanceId: 't', onRequest: () => {} },
  );
});
afterEach(async () => {
  await source.close();
  await sim.close();
});

function rootScope(orgId: string, discover: unknown = true) {
  const settings = stackitScopeSchema.parse({ organization: orgId, discover });
  return {
    key: `stackit:organization:${orgId}`,
    provider: 'sim',
    ref: { kind: 'organization', id: orgId },
    settings,
  };
}

async function discover(orgId: string, discover: unknown = true): Promise<string[]> {
  const found = await source.discovery.discover(rootScope(orgId, discover), {
    signal: new AbortController().signal,
    log: silentLogger,
  });
  return found.map((s) => `${s.ref.kind}:${s.ref.id}`).sort();
}

/** org → folder a (team=infra) → folder b → project deep; org → project top; a → 120 projects. */
function tree() {
  const rm = sim.resourceManager;
  const org = rm.addOrganization();
  const a = rm.addFolder(org.id, { labels: { team: 'infra' } });
  const b = rm.addFolder(a.id);
  const deep = rm.addProject(b.id, { labels: { env: 'prod' } });
  const top = rm.addProject(org.id, { labels: { env: 'dev' } });
  const many = Array.from({ length: 120 }, () => rm.addProject(a.id));
  return { org, a, b, deep, top, many };
}

describe('discovery walk (Resource Manager)', () => {
  it('finds every folder and project under the organization, at any depth and over several pages', async () => {
    const { org, a, b, deep, top, many } = tree();
    sim.resetObservations();
    const found = await discover(org.id);
    expect(found).toEqual(
      [
        `folder:${a.id}`,
        `folder:${b.id}`,
        `project:${deep.id}`,
        `project:${top.id}`,
        ...many.map((p) => `project:${p.id}`),
      ].sort(),
    );
    const requests = sim.requestLog.filter((r) => r.route === 'stackit.resource-manager');
    // Folders and projects of org, a and b; the 120 projects of a take two pages of 100.
    expect(requests).toHaveLength(7);
    expect(requests.every((r) => r.limit === 100)).toBe(true);
  });

  it('filters subtrees by id and by labels; an exclude wins', async () => {
    const { org, a, b, deep, top } = tree();
    expect(await discover(org.id, { exclude: [{ id: a.id }] })).toEqual([`project:${top.id}`]);
    const infra = await discover(org.id, { include: [{ labels: { team: 'infra' } }] });
    expect(infra).toContain(`project:${deep.id}`);
    expect(infra).toContain(`folder:${b.id}`);
    expect(infra).not.toContain(`project:${top.id}`);
    expect(await discover(org.id, { include: [{ labels: { env: '*' } }] })).toEqual(
      [`project:${deep.id}`, `project:${top.id}`].sort(),
    );
    expect(
      await discover(org.id, {
        include: [{ labels: { team: 'infra' } }],
        exclude: [{ labels: { env: 'prod' } }],
      }),
    ).not.toContain(`project:${deep.id}`);
    expect(await discover(org.id, { include: [{ id: b.id, labels: { env: 'prod' } }] })).toEqual([
      `project:${deep.id}`,
    ]);
  });

  it('retries a transient failure and fails the whole walk on a lasting one', async () => {
    const { org } = tree();
    sim.resourceManagerFaults.enqueue({ type: 'status', status: 503 }, { type: 'reset' });
    expect((await discover(org.id)).length).toBe(124);
    sim.resourceManagerFaults.set({ serverErrorRate: 1 });
    await expect(discover(org.id)).rejects.toMatchObject({ reason: 'server_error' });
    sim.resourceManagerFaults.clear();
    await expect(discover(org.id, { maxScopes: 50 })).rejects.toThrow(
      /found more than 50 folders and projects/,
    );
  });
});
