import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../../../src/simulator/index.ts';

let sim: Simulator;

beforeEach(async () => {
  sim = await startSimulator({ seed: 9 });
});
afterEach(async () => {
  await sim.close();
});

async function list(
  collection: 'folders' | 'projects',
  params: Record<string, string | number>,
  token: string | null = sim.token,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const q = new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)]));
  const res = await fetch(`${sim.url}/v2/${collection}?${q}`, {
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('simulated Resource Manager', () => {
  it('lists direct children by UUID or containerId, paged by offset/limit (default 50, clamped to 100)', async () => {
    const rm = sim.resourceManager;
    const org = rm.addOrganization();
    const folder = rm.addFolder(org.id, { name: 'platform', labels: { team: 'infra' } });
    const nested = rm.addFolder(folder.id);
    const projects = Array.from({ length: 130 }, (_, i) => rm.addProject(folder.id, { name: `p${i}` }));
    rm.addProject(nested.id);

    const folders = await list('folders', { containerParentId: org.id });
    expect(folders.status).toBe(200);
    expect(folders.json).toEqual({
      items: [
        {
          folderId: folder.id,
          containerId: folder.containerId,
          name: 'platform',
          parent: { id: org.id, containerId: org.containerId, type: 'ORGANIZATION' },
          labels: { team: 'infra' },
          creationTime: expect.any(String),
          updateTime: expect.any(String),
        },
      ],
      offset: 0,
      limit: 50,
    });
    const first = await list('projects', { containerParentId: folder.containerId });
    expect((first.json.items as unknown[]).length).toBe(50);
    const big = await list('projects', { containerParentId: folder.id, offset: 100, limit: 500 });
    expect(big.json.limit).toBe(100);
    expect((big.json.items as Array<{ projectId: string }>).map((p) => p.projectId)).toEqual(
      projects.slice(100).map((p) => p.id),
    );
    expect((big.json.items as Array<Record<string, unknown>>)[0]).toMatchObject({
      lifecycleState: 'ACTIVE',
      parent: { id: folder.id, type: 'FOLDER' },
    });
    // Only direct children: the nested folder's project is not under the first folder.
    const all = [
      ...((await list('projects', { containerParentId: folder.id, limit: 100 })).json.items as unknown[]),
      ...((await list('projects', { containerParentId: folder.id, offset: 100, limit: 100 })).json
        .items as unknown[]),
    ];
    expect(all).toHaveLength(130);
  });

  it('answers errors with the spec’s ErrorResponse', async () => {
    const org = sim.resourceManager.addOrganization();
    const none = await list('projects', {});
    expect(none).toEqual({
      status: 400,
      json: {
        timeStamp: expect.any(String),
        path: '/v2/projects',
        status: 400,
        error: 'Bad Request',
        message: 'Either containerParentId OR containerIds OR member must be passed',
      },
    });
    expect((await list('projects', { containerParentId: org.id, limit: 0 })).status).toBe(400);
    expect((await list('projects', { containerParentId: org.id, offset: 'x' })).status).toBe(400);
    expect(
      (await list('folders', { containerParentId: '00000000-0000-4000-8000-000000000000' })).status,
    ).toBe(404);
    expect((await list('folders', { containerParentId: org.id }, null)).status).toBe(401);
    expect((await list('folders', { containerParentId: org.id }, 'wrong')).status).toBe(401);
    sim.resourceManagerFaults.enqueue({ type: 'status', status: 503 });
    expect((await list('folders', { containerParentId: org.id })).status).toBe(503);
    expect((await list('folders', { containerParentId: org.id })).status).toBe(200);
  });

  it('reflects changes at once and ties each container to its audit log', async () => {
    const rm = sim.resourceManager;
    const org = rm.addOrganization({ eventsPerMinute: 1 });
    const project = rm.addProject(org.id, { eventsPerMinute: 2, labels: { env: 'dev' } });
    expect(
      sim.truth
        .scopes()
        .map((s) => s.id)
        .sort(),
    ).toEqual([org.id, project.id].sort());
    rm.setLabels(project.id, { env: 'prod' });
    rm.setLifecycleState(project.id, 'DELETING');
    const [item] = (await list('projects', { containerParentId: org.id })).json.items as Array<
      Record<string, unknown>
    >;
    expect(item).toMatchObject({ labels: { env: 'prod' }, lifecycleState: 'DELETING' });
    const folder = rm.addFolder(org.id);
    expect(() => rm.remove(folder.id)).not.toThrow();
    rm.move(project.id, rm.addFolder(org.id).id);
    expect((await list('projects', { containerParentId: org.id })).json.items).toEqual([]);
    rm.remove(project.id);
    expect(sim.truth.scopes().map((s) => s.id)).toEqual([org.id]);
    const parent = rm.addFolder(org.id);
    rm.addProject(parent.id);
    expect(() => rm.remove(parent.id)).toThrow(/still has children/);
  });
});
