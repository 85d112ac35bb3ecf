import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DoctorReport, renderDoctor, runDoctor } from '../../src/cli/commands/doctor.ts';
import { loadConfig } from '../../src/config/load.ts';
import { makeScopeIds, type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { EsTestServer } from '../support/es-server.ts';
import { LokiTestServer } from '../support/loki-server.ts';
import { S3_ACCESS_KEY, S3_SECRET_KEY, S3TestServer } from '../support/s3-server.ts';

const ES_KEY = 'ZG9jdG9yOmVzLWtleS1zZWNyZXQ=';
const CLOUDSCALE_TOKEN = 'cloudscale-doctor-token-0123456789';
const [PROJECT, FOLDER] = makeScopeIds(7, 2) as [string, string];

let sim: Simulator;
let loki: LokiTestServer;
let es: EsTestServer;
let s3: S3TestServer;
let dir: string;

beforeAll(async () => {
  sim = await startSimulator({
    seed: 7,
    stackit: {
      token: 'stackit-doctor-token-0123456789',
      scopes: [
        { kind: 'project', id: PROJECT, eventsPerMinute: 60 },
        { kind: 'folder', id: FOLDER, eventsPerMinute: 60 },
      ],
      trafficStartMs: Date.now() - 10 * 60_000,
    },
    cloudscale: { projects: [{ name: 'web-shop', token: CLOUDSCALE_TOKEN, eventsPerMinute: 30 }] },
  });
  loki = new LokiTestServer();
  es = new EsTestServer({ authorization: `ApiKey ${ES_KEY}` });
  s3 = new S3TestServer();
  await Promise.all([loki.start(), es.start(), s3.start()]);
  dir = await mkdtemp(join(tmpdir(), 'auditlog-doctor-'));
});

afterAll(async () => {
  await Promise.all([sim.close(), loki.stop(), es.stop(), s3.remove()]);
  await rm(dir, { recursive: true, force: true });
});

const ENV = {
  SIM_URL: '',
  STACKIT_TOKEN: 'stackit-doctor-token-0123456789',
  CS_TOKEN: CLOUDSCALE_TOKEN,
  ES_KEY,
  S3_KEY: S3_ACCESS_KEY,
  S3_SECRET: S3_SECRET_KEY,
};

async function doctor(overrides: { s3?: string; env?: Partial<typeof ENV> } = {}): Promise<DoctorReport> {
  const path = join(dir, `shipper-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(
    path,
    `providers:
  - { name: stackit, type: stackit, auditLogUrl: "\${SIM_URL}", allowInsecureHttp: true, auth: { token: "\${STACKIT_TOKEN}" } }
  - { name: cloudscale, type: cloudscale, apiUrl: "\${SIM_URL}", allowInsecureHttp: true }
scopes:
  - { provider: stackit, project: ${PROJECT} }
  - { provider: stackit, folder: ${FOLDER} }
  - { provider: cloudscale, project: web-shop, auth: { token: "\${CS_TOKEN}" } }
sinks:
  - { name: archive, type: file, path: "${join(dir, 'events-{instance}.ndjson')}" }
  - { name: out, type: stdout }
  - { name: loki, type: loki, url: ${loki.url}, tenant: audit }
  - { name: es, type: elasticsearch, url: ${es.url}, auth: { apiKey: "\${ES_KEY}" }, manageTemplate: true, allowInsecureHttp: true }
  - name: s3
    type: s3
    bucket: ${s3.bucket}
    prefix: doctor/
    endpoint: ${s3.url}
    allowInsecureHttp: true
    auth: { accessKeyId: "\${S3_KEY}", secretAccessKey: "\${S3_SECRET}" }
${overrides.s3 ?? ''}
`,
  );
  const loaded = loadConfig({ path }, { env: { ...ENV, SIM_URL: sim.url, ...overrides.env } });
  if (!loaded.ok) throw new Error(loaded.error.format());
  return await runDoctor(loaded.config, { timeoutMs: 20_000 });
}

const stepsOf = (report: DoctorReport, name: string) =>
  Object.fromEntries(
    (report.targets.find((t) => t.name === name)?.steps ?? []).map((s) => [s.step, s.status]),
  );

describe('auditlog-shipper doctor', () => {
  it('reaches every provider and sink with its credentials and does one harmless read or write each', async () => {
    const report = await doctor();
    expect(report.ok).toBe(true);
    // One audit-log read per kind of scope, each authenticated.
    expect(stepsOf(report, 'stackit')).toMatchObject({
      'dns (audit log API)': 'ok',
      'tls (audit log API)': 'warn', // plain http to the simulator
      [`auth (project ${PROJECT})`]: 'ok',
      [`read (project ${PROJECT})`]: 'ok',
      [`read (folder ${FOLDER})`]: 'ok',
    });
    expect(stepsOf(report, 'cloudscale')).toMatchObject({ 'read (project web-shop)': 'ok' });
    expect(stepsOf(report, 'archive')).toEqual({ write: 'ok' });
    expect(stepsOf(report, 'out')).toEqual({ check: 'skip' });
    expect(stepsOf(report, 'loki')).toMatchObject({ ready: 'ok', auth: 'ok', write: 'ok' });
    // The test entry went to a stream of its own, never to an audit stream.
    expect(loki.entries().map((e) => e.labels)).toEqual([expect.stringContaining('auditlog-shipper-doctor')]);
    expect(stepsOf(report, 'es')).toMatchObject({ auth: 'ok', health: 'ok', template: 'ok', write: 'ok' });
    expect(es.singleCreates).toBe(1);
    expect(es.singleDocs.size).toBe(0); // created, then deleted
    expect(es.docs()).toHaveLength(0);
    expect(stepsOf(report, 's3')).toMatchObject({ auth: 'ok', permission: 'ok', write: 'ok' });
    expect(await s3.keys('doctor/')).toEqual([]); // the canary is gone again

    const table = renderDoctor(report);
    expect(table).toMatch(/^TARGET +STEP/);
    expect(table).toContain('If-None-Match: * honoured (second PUT of the canary answered 412)');
    expect(table).toMatch(/✓ 7 checked, all reachable\n$/);
    for (const secret of Object.values(ENV).filter((v) => v.length > 8)) {
      expect(table + JSON.stringify(report)).not.toContain(secret);
    }
  });

  it('fails, naming the step, on a store that ignores If-None-Match (only a 412 proves support)', async () => {
    s3.ignoreIfNoneMatch = true;
    try {
      const strict = await doctor();
      expect(strict.ok).toBe(false);
      const write = strict.targets.find((t) => t.name === 's3')?.steps.find((s) => s.step === 'write');
      expect(write).toMatchObject({
        status: 'fail',
        detail: expect.stringContaining('IGNORED: the second PUT of the canary answered 200'),
      });
      expect(renderDoctor(strict)).toMatch(/✗ 1 of 7 failed: s3\n$/);
      // A config that accepts at-least-once is warned, not failed.
      const lenient = await doctor({ s3: '    conditionalWrites: false' });
      expect(lenient.ok).toBe(true);
      expect(stepsOf(lenient, 's3')).toMatchObject({ write: 'warn' });
    } finally {
      s3.ignoreIfNoneMatch = false;
    }
  });

  it('reports refused credentials as auth failures without printing them', async () => {
    const wrong = {
      STACKIT_TOKEN: 'wrong-stackit-token-9876543210',
      CS_TOKEN: 'wrong-cloudscale-token-9876543210',
      ES_KEY: 'd3Jvbmc6d3Jvbmcta2V5LXZhbHVl',
      S3_SECRET: 'wrong-s3-secret-9876543210',
    };
    const report = await doctor({ env: wrong });
    expect(report.ok).toBe(false);
    expect(stepsOf(report, 'stackit')).toMatchObject({ [`auth (project ${PROJECT})`]: 'fail' });
    expect(stepsOf(report, 'cloudscale')).toMatchObject({ 'auth (project web-shop)': 'fail' });
    expect(stepsOf(report, 'es')).toMatchObject({ auth: 'fail' });
    expect(stepsOf(report, 's3')).toMatchObject({ auth: 'fail' });
    const output = renderDoctor(report) + JSON.stringify(report);
    for (const secret of Object.values(wrong)) expect(output).not.toContain(secret);
  });
});
