import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runLinks } from '../../src/cli/commands/stackit.ts';
import { type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { MARKER } from '../../src/sources/stackit/telemetry/links.ts';
import { silentLogger } from '../support/logger.ts';

/** One clock for the simulator: link status transitions are logic, not waiting. */
let nowMs = Date.UTC(2026, 11, 2, 10, 0, 0);
let sim: Simulator;
let dir: string;
let configPath: string;
const RECEIVER_TOKEN = 'receiver-bearer-3f9a1c7e5b2d4a6f8e0c';
const ROUTER_PROJECT = '7a1e2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b';
let org: string;
let folders: string[];
let projects: string[];
let standalone: string;

function env(extra: Record<string, string> = {}): Record<string, string> {
  return { SIM_TOKEN: sim.token, RECEIVER_TOKEN, ...extra };
}

async function writeConfig(receiverUrl = 'https://audit-receiver.example.com'): Promise<void> {
  await writeFile(
    configPath,
    `providers:
  - name: stackit-prod
    type: stackit
    auditLogUrl: ${sim.url}
    resourceManagerUrl: ${sim.url}
    allowInsecureHttp: true
    auth:
      token: \${SIM_TOKEN}
    retry: { attempts: 2, initialBackoff: 10ms, maxBackoff: 10ms }
    telemetry:
      linkApiUrl: ${sim.url}
      routerApiUrl: ${sim.url}
      routerProject: ${ROUTER_PROJECT}
      regions: [eu01, eu02]
      destination:
        url: ${receiverUrl}
        bearerToken: \${RECEIVER_TOKEN}
scopes:
  - provider: stackit-prod
    organization: ${org}
    discover: true
  - provider: stackit-prod
    project: ${standalone}
sinks:
  - name: archive
    type: file
    path: ${join(dir, 'events.ndjson')}
`,
  );
}

async function run(mode: 'plan' | 'apply', json = false) {
  let out = '';
  let err = '';
  const code = await runLinks(
    mode,
    { config: configPath, ...(json ? { json: true } : {}) },
    { out: (t) => (out += t), err: (t) => (err += t), env: env(), log: silentLogger },
  );
  return { code, out, err };
}

const mutations = () => sim.telemetry.requests().filter((r) => r.method !== 'GET');

beforeAll(async () => {
  sim = await startSimulator({ seed: 51, now: () => nowMs });
  dir = await mkdtemp(join(tmpdir(), 'links-'));
  configPath = join(dir, 'shipper.yaml');
  const rmApi = sim.resourceManager;
  org = rmApi.addOrganization().id;
  const f1 = rmApi.addFolder(org).id;
  const f2 = rmApi.addFolder(f1).id; // nested: discovery must walk into it
  folders = [f1, f2];
  projects = [rmApi.addProject(org).id, rmApi.addProject(f1).id, rmApi.addProject(f2).id];
  // A project outside the organization's tree, configured on its own.
  standalone = rmApi.addProject(rmApi.addOrganization().id).id;
  await writeConfig();
});
afterAll(async () => {
  await sim.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  sim.telemetryFaults.clear();
});

describe('stackit links plan|apply against the simulated Telemetry Link and Router APIs', () => {
  it('an organization of folders and projects converges: one router, destination and link per level and region', async () => {
    const plan = await run('plan', true);
    expect(plan.code).toBe(0);
    const [report] = JSON.parse(plan.out) as Array<{
      plan: Array<{ region: string; kind: string; action: string }>;
    }>;
    const creates = (report?.plan ?? []).filter((i) => i.action === 'create');
    // Per region: router, destination, access token and 1 + 2 + 4 links (organization, folders, projects).
    expect(creates.filter((i) => i.kind === 'link')).toHaveLength(2 * 7);
    expect(creates.filter((i) => i.kind === 'router')).toHaveLength(2);
    expect(mutations()).toEqual([]); // plan only reads

    const applied = await run('apply');
    expect(applied.err).toBe('');
    expect(applied.code).toBe(0);
    expect(applied.out).toMatch(/provider "stackit-prod": 20 created\n/);

    const routers = sim.telemetry.routers();
    expect(routers.map((r) => r.region).sort()).toEqual(['eu01', 'eu02']);
    for (const router of routers) {
      expect(router).toMatchObject({
        projectId: ROUTER_PROJECT,
        displayName: 'auditlog-shipper',
        description: MARKER,
      });
      const [destination, ...more] = sim.telemetry.destinations(router.id);
      expect(more).toEqual([]);
      expect(destination?.config).toEqual({
        configType: 'OpenTelemetry',
        openTelemetry: { uri: 'https://audit-receiver.example.com', bearerToken: RECEIVER_TOKEN },
      });
    }
    nowMs += 5_000; // past reconciling
    const links = sim.telemetry.links();
    const expected = [
      ['organization', org],
      ...folders.map((id) => ['folder', id]),
      ...[...projects, standalone].map((id) => ['project', id]),
    ];
    for (const region of ['eu01', 'eu02']) {
      const router = routers.find((r) => r.region === region);
      const inRegion = links.filter((l) => l.region === region);
      expect(inRegion.map((l) => [l.level, l.containerId]).sort()).toEqual([...expected].sort());
      for (const link of inRegion) {
        expect(link).toMatchObject({ telemetryRouterId: router?.id, status: 'active', enabled: true });
      }
      expect(sim.telemetry.linkedContainers(router?.id as string)).toHaveLength(7);
    }
    // Secrets stay out of the output: the receiver's token and the router access tokens.
    for (const secret of [RECEIVER_TOKEN, ...sim.telemetry.accessTokens().map((t) => t.token)]) {
      expect(applied.out + applied.err).not.toContain(secret);
    }
  });

  it('a second apply changes nothing', async () => {
    sim.telemetry.resetRequests();
    const again = await run('apply');
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/provider "stackit-prod": 18 unchanged\n/);
    expect(mutations()).toEqual([]);
    const plan = await run('plan');
    expect(plan.out).not.toMatch(/\b(create|update|repair)\b +/);
  });

  it('a new project is linked, a failed link is repaired, and a changed credential updates the destination', async () => {
    const added = sim.resourceManager.addProject(folders[1] as string).id;
    sim.telemetry.failLink('folder', folders[0] as string, 'eu02');
    const plan = await run('plan', true);
    const [report] = JSON.parse(plan.out) as Array<{
      plan: Array<{ target: string; region: string; action: string; status?: string }>;
    }>;
    const changes = (report?.plan ?? []).filter((i) => i.action !== 'none');
    expect(changes.map((i) => `${i.region} ${i.action} ${i.target}`).sort()).toEqual(
      [
        `eu01 create project ${added}`,
        `eu02 create project ${added}`,
        `eu02 repair folder ${folders[0]}`,
        'eu01 create access token "auditlog-shipper"',
        'eu02 create access token "auditlog-shipper"',
      ].sort(),
    );
    const applied = await run('apply');
    expect(applied.code).toBe(0);
    nowMs += 5_000;
    expect(sim.telemetry.links().filter((l) => l.status !== 'active')).toEqual([]);

    await writeConfig('https://receiver-2.example.com');
    const moved = await run('apply');
    expect(moved.code).toBe(0);
    expect(moved.out).toMatch(
      /destination +OpenTelemetry destination https:\/\/receiver-2\.example\.com +updated/,
    );
    for (const d of sim.telemetry.destinations())
      expect(d.config.openTelemetry?.uri).toBe('https://receiver-2.example.com');
    sim.telemetry.resetRequests();
    expect((await run('apply')).code).toBe(0);
    expect(mutations()).toEqual([]);
  });

  it('a link that fails is reported with API, status and resource, the rest converge, and the exit is non-zero', async () => {
    const refused = sim.resourceManager.addProject(org).id;
    const healthy = sim.resourceManager.addProject(org).id;
    sim.telemetry.setForbidden(refused, true);
    const applied = await run('apply').finally(() => sim.telemetry.setForbidden(refused, false));
    expect(applied.code).toBe(1);
    const line = applied.out.split('\n').find((l) => l.includes(refused) && l.startsWith('eu01'));
    expect(line).toMatch(/ failed +/);
    expect(line).toContain(`telemetry-link API: link of project ${refused} in eu01: HTTP 403`);
    expect(sim.telemetry.links().filter((l) => l.containerId === healthy)).toHaveLength(2);
    expect(sim.telemetry.links().filter((l) => l.containerId === refused)).toHaveLength(0);
    expect((await run('apply')).code).toBe(0);
  });

  it('a link someone else made is reported and left alone; nothing is ever deleted', async () => {
    const theirs = sim.resourceManager.addProject(folders[0] as string).id;
    const foreignRouter = '0f0f0f0f-1111-4222-8333-444455556666';
    sim.telemetry.addForeignLink({
      level: 'project',
      containerId: theirs,
      region: 'eu01',
      telemetryRouterId: foreignRouter,
    });
    const applied = await run('apply');
    expect(applied.code).toBe(1);
    expect(applied.out).toMatch(
      new RegExp(`eu01 +link +project ${theirs} +foreign +a link the shipper did not create`),
    );
    const link = sim.telemetry.links().find((l) => l.containerId === theirs && l.region === 'eu01');
    expect(link).toMatchObject({ telemetryRouterId: foreignRouter, displayName: 'security team' });
    // eu02 has no foreign link there: it is linked.
    expect(
      sim.telemetry.links().find((l) => l.containerId === theirs && l.region === 'eu02')?.description,
    ).toBe(MARKER);
    expect(sim.telemetry.requests().filter((r) => r.method === 'DELETE')).toEqual([]);
  });

  it('a failing Router API stops the region with the API, status and request named', async () => {
    sim.telemetryFaults.enqueue({ type: 'status', status: 500 }, { type: 'status', status: 500 });
    const result = await run('plan');
    expect(result.code).toBe(1);
    expect(result.err).toMatch(
      /✗ provider "stackit-prod": telemetry-router API: project .* in eu01: routers: HTTP 500 from GET http:\/\/127\.0\.0\.1:\d+\/v1\/projects\//,
    );
  });
});
