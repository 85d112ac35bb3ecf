import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../../../src/simulator/index.ts';

/** The simulated Telemetry Link and Router APIs keep the rules of STACKIT's published specs. */
let nowMs = Date.UTC(2026, 11, 2, 10, 0, 0);
let sim: Simulator;
const PROJECT = '1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d';

beforeAll(async () => {
  sim = await startSimulator({ seed: 61, now: () => nowMs });
});
afterAll(async () => {
  await sim.close();
});

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${sim.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${sim.token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return {
    status: res.status,
    json: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>),
  };
}

const routers = (region = 'eu01') => `/v1/projects/${PROJECT}/regions/${region}/telemetry-routers`;

describe('Telemetry Router API', () => {
  it('pages routers with pageSize/pageToken and refuses what the spec refuses', async () => {
    for (let i = 0; i < 12; i++)
      expect((await call('POST', routers(), { displayName: `r ${i}` })).status).toBe(201);
    const first = await call('GET', routers());
    expect(first.json?.telemetryRouters).toHaveLength(10); // default pageSize
    const second = await call('GET', `${routers()}?pageToken=${first.json?.nextPageToken}`);
    expect(second.json?.telemetryRouters).toHaveLength(2);
    expect(second.json?.nextPageToken).toBeUndefined();
    expect((await call('GET', `${routers()}?pageSize=101`)).status).toBe(400);
    expect((await call('GET', `${routers()}?pageToken=garbage`)).status).toBe(400);
    expect((await call('GET', routers('eu03'))).status).toBe(400);
    expect((await call('POST', routers(), { displayName: 'no_underscores' })).status).toBe(400);
    expect((await call('POST', routers(), { displayName: 'x'.repeat(33) })).status).toBe(400);
    const unauthorized = await fetch(`${sim.url}${routers()}`);
    expect(unauthorized.status).toBe(401);
    expect(await unauthorized.json()).toHaveProperty('message');
  });

  it('shows an access token once, and never a destination credential', async () => {
    const router = (await call('POST', routers('eu02'), { displayName: 'shipper' })).json as {
      id: string;
      status: string;
    };
    expect(router.status).toBe('reconciling');
    const token = await call('POST', `${routers('eu02')}/${router.id}/access-tokens`, {
      displayName: 'links',
      ttl: 30,
    });
    expect(token.status).toBe(201);
    expect(token.json?.accessToken).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const listed = await call('GET', `${routers('eu02')}/${router.id}/access-tokens`);
    expect(JSON.stringify(listed.json)).not.toContain(token.json?.accessToken as string);
    const dest = await call('POST', `${routers('eu02')}/${router.id}/destinations`, {
      displayName: 'receiver',
      config: {
        configType: 'OpenTelemetry',
        openTelemetry: { uri: 'https://r.example', bearerToken: 'very-secret' },
      },
    });
    expect(dest.status).toBe(201);
    expect(dest.json).toMatchObject({
      credentialType: 'bearerToken',
      config: { openTelemetry: { uri: 'https://r.example' } },
    });
    expect(JSON.stringify(await call('GET', `${routers('eu02')}/${router.id}/destinations`))).not.toContain(
      'very-secret',
    );
    expect((await call('DELETE', `${routers('eu02')}/${router.id}`)).status).toBe(409); // children, no force
  });
});

describe('Telemetry Link API', () => {
  it('one link per level and region, with the statuses the spec names', async () => {
    const org = sim.resourceManager.addOrganization().id;
    const project = sim.resourceManager.addProject(org).id;
    const router = (await call('POST', routers(), { displayName: 'shipper' })).json as { id: string };
    const token = (await call('POST', `${routers()}/${router.id}/access-tokens`, { displayName: 't' }))
      .json as {
      id: string;
      accessToken: string;
    };
    const path = `/v1/projects/${project}/regions/eu01/telemetry-link`;
    const body = {
      displayName: 'shipper',
      telemetryRouterId: router.id,
      enabled: true,
      accessToken: token.accessToken,
    };

    expect((await call('GET', path)).status).toBe(404);
    expect((await call('PUT', path, { ...body, accessToken: 'not-a-jwt' })).status).toBe(400);
    expect((await call('PUT', `/v1/projects/${project}/regions/eu02/telemetry-link`, body)).status).toBe(400); // router is in eu01
    expect((await call('PUT', `/v1/folders/${project}/regions/eu01/telemetry-link`, body)).status).toBe(404); // not a folder
    const created = await call('PUT', path, body);
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({
      status: 'reconciling',
      regionId: 'eu01',
      telemetryRouterId: router.id,
    });
    expect((await call('PUT', path, body, { 'if-none-match': '*' })).status).toBe(412);
    expect((await call('PUT', path, body)).status).toBe(200);
    nowMs += 2_000;
    expect((await call('GET', path)).json?.status).toBe('active');
    expect((await call('PATCH', path, { enabled: false })).json?.status).toBe('reconciling');
    nowMs += 2_000;
    expect((await call('GET', path)).json?.status).toBe('inactive');
    await call('PATCH', path, { enabled: true });
    nowMs += 2_000;
    // The router's token is deleted: routing through the link fails.
    expect((await call('DELETE', `${routers()}/${router.id}/access-tokens/${token.id}`)).status).toBe(204);
    expect((await call('GET', path)).json?.status).toBe('failed');
    expect((await call('DELETE', path)).status).toBe(204);
    expect((await call('GET', path)).json?.status).toBe('deleting');
    nowMs += 2_000;
    expect((await call('GET', path)).status).toBe(404);
    expect(sim.telemetry.links().filter((l) => l.containerId === project)).toEqual([]);
  });
});
