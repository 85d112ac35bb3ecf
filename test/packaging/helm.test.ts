import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { helmBinary } from '../../scripts/helm-binary.ts';
import { loadConfig } from '../../src/config/load.ts';

const root = new URL('../..', import.meta.url).pathname;
const chart = join(root, 'helm/auditlog-shipper');
const examplesDir = join(chart, 'examples');
const values = parse(readFileSync(join(chart, 'values.yaml'), 'utf8')) as Record<string, unknown>;
const schema = JSON.parse(readFileSync(join(chart, 'values.schema.json'), 'utf8'));
const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
const chartReadme = readFileSync(join(chart, 'README.md'), 'utf8');
const work = mkdtempSync(join(tmpdir(), 'helm-test-'));

type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  // biome-ignore lint/suspicious/noExplicitAny: rendered Kubernetes objects of many kinds, checked by schema below
  spec?: any;
  data?: Record<string, string>;
};

let helm: string;
beforeAll(() => {
  helm = helmBinary();
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(helm, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** `helm template` with these values files and --set flags; throws with helm's message on failure. */
function render(files: string[] = [], sets: string[] = []): Manifest[] {
  const result = run([
    'template',
    'audit',
    chart,
    '--namespace',
    'audit',
    ...files.flatMap((f) => ['-f', f]),
    ...sets.flatMap((s) => ['--set', s]),
  ]);
  if (result.status !== 0) throw new Error(result.stderr);
  return parseAllDocuments(result.stdout)
    .map((doc) => doc.toJSON() as Manifest | null)
    .filter((m): m is Manifest => m !== null);
}

function valuesFile(name: string, text: string): string {
  const path = join(work, name);
  writeFileSync(path, text);
  return path;
}

function find(manifests: Manifest[], kind: string, name: string): Manifest {
  const found = manifests.find((m) => m.kind === kind && m.metadata.name === name);
  if (!found)
    throw new Error(`no ${kind} ${name} in ${manifests.map((m) => `${m.kind}/${m.metadata.name}`)}`);
  return found;
}

/** Validates each manifest against its Kubernetes or prometheus-operator schema. */
async function validateManifests(manifests: Manifest[]): Promise<string[]> {
  const problems: string[] = [];
  for (const manifest of manifests) {
    const [group, version] = manifest.apiVersion.includes('/')
      ? manifest.apiVersion.split('/')
      : ['', manifest.apiVersion];
    const module =
      group === 'monitoring.coreos.com'
        ? `@kubernetes-models/prometheus-operator/${group}/${version}/${manifest.kind}`
        : group === 'gateway.networking.k8s.io'
          ? `@kubernetes-models/gateway-api/${group}/${version}/${manifest.kind}`
          : `kubernetes-models/${group ? `${group}/` : ''}${version}/${manifest.kind}`;
    let Model: new (data: unknown) => { validate(): void };
    try {
      Model = (await import(module))[manifest.kind];
    } catch {
      problems.push(`${manifest.kind} ${manifest.apiVersion}: no schema (${module})`);
      continue;
    }
    try {
      new Model(manifest).validate();
    } catch (error) {
      problems.push(`${manifest.kind}/${manifest.metadata.name}: ${(error as Error).message}`);
    }
  }
  return problems;
}

const examples = readdirSync(examplesDir)
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => join(examplesDir, f));

/** The ```yaml blocks of the chart README: each one is a values file a user may copy. */
const readmeExamples = [...chartReadme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m, i) =>
  valuesFile(`readme-${i}.yaml`, m[1] as string),
);

/** A STACKIT service-account key document of the shape the portal hands out. */
function serviceAccountKey() {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    id: 'a1b2c3d4-0000-4000-8000-000000000001',
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyType: 'USER_MANAGED',
    keyOrigin: 'GENERATED',
    keyAlgorithm: 'RSA_2048',
    active: true,
    createdAt: '2025-06-01T00:00:00Z',
    credentials: {
      kid: 'kid-1',
      iss: 'shipper@sa.stackit.cloud',
      sub: '6a1f0c9e-2b3d-4e5f-8a9b-0c1d2e3f4a5b',
      aud: 'https://stackit-service-account-prod.apps.01.cf.eu01.stackit.cloud',
      privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    },
  };
}

function at(path: string[]): unknown {
  return path.reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], values);
}

describe('Helm chart values', () => {
  it('values.yaml validates against values.schema.json', () => {
    expect(validate(values), JSON.stringify(validate.errors)).toBe(true);
  });

  it('the schema refuses wrong values with a path', () => {
    const wrong = { ...values, replicaCount: 0, redis: { url: 'http://redis:6379' }, unknownKey: true };
    expect(validate(wrong)).toBe(false);
    const paths = (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
    expect(paths).toEqual(
      expect.arrayContaining([
        '/replicaCount must be >= 1',
        expect.stringMatching(/^\/redis\/url must match pattern/),
        ' must NOT have additional properties',
      ]),
    );
  });

  it('every .Values path a template uses exists in values.yaml', () => {
    const missing: string[] = [];
    for (const file of readdirSync(join(chart, 'templates'))) {
      const text = readFileSync(join(chart, 'templates', file), 'utf8');
      for (const match of text.matchAll(/\.Values\.([A-Za-z0-9_.]+)/g)) {
        const path = (match[1] as string).split('.');
        // `config` is the shipper's own file, free-form here (empty by default: the demo).
        if (at(path) === undefined && path[0] !== 'config') missing.push(`${file}: .Values.${match[1]}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it("the README's values table lists every value of values.yaml and nothing else", () => {
    const section = chartReadme.split(/^## Values$/m)[1] ?? '';
    const documented = [...section.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1] as string);
    expect(documented.length).toBeGreaterThan(20);
    const leaves: string[] = [];
    const walk = (node: unknown, path: string[]): void => {
      const isMap = node !== null && typeof node === 'object' && !Array.isArray(node);
      if (isMap && Object.keys(node).length > 0 && !documented.includes(path.join('.'))) {
        for (const [key, child] of Object.entries(node)) walk(child, [...path, key]);
      } else leaves.push(path.join('.'));
    };
    walk(values, []);
    expect(leaves.filter((leaf) => !documented.includes(leaf))).toEqual([]);
    expect(documented.filter((key) => at(key.split('.')) === undefined)).toEqual([]);
  });

  it('ships the same alert rules and dashboard as deploy/', () => {
    expect(readFileSync(join(chart, 'files/alerts.yaml'), 'utf8')).toBe(
      readFileSync(join(root, 'deploy/prometheus/alerts.yaml'), 'utf8'),
    );
    expect(readFileSync(join(chart, 'files/dashboard.json'), 'utf8')).toBe(
      readFileSync(join(root, 'deploy/grafana/auditlog-shipper.json'), 'utf8'),
    );
  });
});

// Each test runs helm a few to a few dozen times (about 0.1-0.7 s each, more on a loaded machine).
describe('Helm chart rendered by a real helm', { timeout: 180_000 }, () => {
  it('passes helm lint --strict with the defaults and with every example values file', () => {
    for (const file of [undefined, ...examples, ...readmeExamples]) {
      const lint = run(['lint', '--strict', chart, ...(file ? ['-f', file] : [])]);
      expect(lint.status, `${file ?? 'defaults'}: ${lint.stdout}${lint.stderr}`).toBe(0);
    }
  });

  it('every inline example in values.yaml comments (e.g. [..] or {..}) renders as the value it documents', async () => {
    const examplesFound: Array<{ path: string; value: unknown }> = [];
    const stack: Array<{ indent: number; key: string }> = [];
    let pending: unknown[] = [];
    for (const line of readFileSync(join(chart, 'values.yaml'), 'utf8').split('\n')) {
      const comment = /^\s*#.*\be\.g\. ([[{].*?[\]}])(?=[ .,;]|$)/.exec(line);
      if (comment) pending.push(parse(comment[1] as string));
      const key = /^(\s*)([A-Za-z][\w]*):/.exec(line);
      if (!key) continue;
      const indent = (key[1] as string).length;
      while (stack.length > 0 && (stack.at(-1) as { indent: number }).indent >= indent) stack.pop();
      stack.push({ indent, key: key[2] as string });
      for (const value of pending) examplesFound.push({ path: stack.map((k) => k.key).join('.'), value });
      pending = [];
    }
    expect(examplesFound.map((e) => e.path)).toEqual(
      expect.arrayContaining(['extraEnv', 'envFrom', 'metrics.prometheusRule.disabledAlerts', 'dataVolume']),
    );
    for (const { path, value } of examplesFound) {
      const result = run([
        'template',
        'audit',
        chart,
        '--set',
        'metrics.prometheusRule.enabled=true',
        '--set-json',
        `${path}=${JSON.stringify(value)}`,
      ]);
      expect(result.status, `${path}: ${result.stderr}`).toBe(0);
      const manifests = parseAllDocuments(result.stdout)
        .map((doc) => doc.toJSON() as Manifest | null)
        .filter((m): m is Manifest => m !== null);
      expect(await validateManifests(manifests), path).toEqual([]);
    }
  });

  it('renders every example into manifests the Kubernetes and prometheus-operator schemas accept', async () => {
    expect(examples.length).toBeGreaterThanOrEqual(6);
    expect(readmeExamples.length).toBeGreaterThanOrEqual(1);
    for (const file of [undefined, ...examples, ...readmeExamples]) {
      const manifests = render(file ? [file] : []);
      expect(await validateManifests(manifests), file ?? 'defaults').toEqual([]);
    }
  });

  it("renders every example's shipper config into a file the shipper itself accepts", () => {
    for (const file of [undefined, ...examples, ...readmeExamples]) {
      const manifests = render(file ? [file] : []);
      const configMap = find(manifests, 'ConfigMap', 'audit-auditlog-shipper');
      const env = Object.fromEntries(
        ['STACKIT_TOKEN', 'CLOUDSCALE_TOKEN_WEB_SHOP', 'AUDITLOG_SIM_TOKEN', 'STACKIT_ROUTER_TOKEN'].map(
          (v) => [v, 't'],
        ),
      );
      // What the Deployment sets itself (e.g. the Workload Identity email) is there too.
      const container = find(manifests, 'Deployment', 'audit-auditlog-shipper').spec.template.spec
        .containers[0];
      for (const entry of container.env as Array<{ name: string; value?: string }>)
        if (entry.value !== undefined) env[entry.name] = entry.value;
      // Secret files (from secrets.files or a CSI volume) are read at load: a real key stands in.
      const text = (configMap.data?.['config.yaml'] ?? '').replace(
        /\/(?:etc\/auditlog-shipper\/secrets|mnt\/secrets-store)\/([\w.-]+)/g,
        (_, name: string) => {
          writeFileSync(join(work, name), JSON.stringify(serviceAccountKey()));
          return join(work, name);
        },
      );
      const result = loadConfig({ text, origin: file ?? 'defaults' }, { env });
      expect(result.ok ? 'ok' : result.error.format(), file ?? 'defaults').toBe('ok');
    }
  });

  it('without values runs the demo: simulator, bundled Redis, a file sink, and NOTES says so', () => {
    const manifests = render();
    const config = parse(find(manifests, 'ConfigMap', 'audit-auditlog-shipper').data?.['config.yaml'] ?? '');
    expect(config.providers[0].auditLogUrl).toBe('http://audit-auditlog-shipper-simulator:8080');
    expect(config.sinks).toEqual([
      { name: 'events', type: 'file', path: '/var/lib/auditlog-shipper/events-{instance}.ndjson' },
    ]);
    const simulator = find(manifests, 'Deployment', 'audit-auditlog-shipper-simulator');
    expect(simulator.spec.template.spec.containers[0].args).toEqual(
      expect.arrayContaining(['simulate', '--project', ...(values.demo as { projects: string[] }).projects]),
    );
    find(manifests, 'StatefulSet', 'audit-auditlog-shipper-redis');
    const shipper = find(manifests, 'Deployment', 'audit-auditlog-shipper').spec.template.spec.containers[0];
    expect(shipper.env).toEqual(
      expect.arrayContaining([
        { name: 'REDIS_URL', value: 'redis://:$(REDIS_PASSWORD)@audit-auditlog-shipper-redis:6379' },
      ]),
    );
    const install = run(['install', 'audit', chart, '--dry-run=client', '--namespace', 'audit']);
    expect(install.status, install.stderr).toBe(0);
    expect(install.stdout).toContain('THIS IS THE DEMO');
    // A real config removes the demo.
    const real = render([join(examplesDir, 'stackit.yaml')]);
    expect(real.map((m) => m.metadata.name)).not.toContain('audit-auditlog-shipper-simulator');
    expect(real.map((m) => m.metadata.name)).not.toContain('audit-auditlog-shipper-redis');
  });

  it('a real config without Redis or a credential fails at template time, naming the value to set', () => {
    const noRedis = valuesFile(
      'no-redis.yaml',
      readFileSync(join(examplesDir, 'stackit.yaml'), 'utf8').replace(/^ {4}REDIS_URL: .*\n/m, ''),
    );
    expect(() => render([noRedis])).toThrow(/no Redis\. Set redis\.url .*secrets\.data\.REDIS_URL/);
    expect(render([noRedis], ['redis.url=redis://redis:6379']).length).toBeGreaterThan(0);
    expect(render([noRedis], ['redis.bundled.enabled=true']).length).toBeGreaterThan(0);

    const noToken = valuesFile(
      'no-token.yaml',
      readFileSync(join(examplesDir, 'stackit.yaml'), 'utf8').replace(/^ {4}STACKIT_TOKEN: .*\n/m, ''),
    );
    expect(() => render([noToken])).toThrow(
      /config references \$\{STACKIT_TOKEN\}.*secrets\.data\.STACKIT_TOKEN/,
    );
    expect(
      render([noToken], ['extraEnv[0].name=STACKIT_TOKEN', 'extraEnv[0].value=x']).length,
    ).toBeGreaterThan(0);

    expect(() => render([join(examplesDir, 'stackit-key-file.yaml')], ['secrets.files=null'])).toThrow(
      /reads \/etc\/auditlog-shipper\/secrets\/sa-key\.json.*secrets\.files\.sa-key\.json/,
    );
  });

  it('no selector of the shipper matches the bundled Redis or the simulator, and theirs match only their own pods', () => {
    const everything = render(
      [],
      ['networkPolicy.enabled=true', 'metrics.serviceMonitor.enabled=true', 'receiver.enabled=true'],
    );
    const manifests = [...everything, ...render([join(examplesDir, 'production.yaml')])];
    const workloads = manifests.filter((m) => m.kind === 'Deployment' || m.kind === 'StatefulSet');
    const matches = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
      Object.entries(selector).every(([k, v]) => labels[k] === v);
    const podsOf = (selector: Record<string, string>): string[] => [
      ...new Set(
        workloads
          .filter((w) => matches(selector, w.spec.template.metadata.labels))
          .map((w) => w.metadata.name),
      ),
    ];
    const selectors: Array<[string, Record<string, string>]> = [];
    for (const m of manifests) {
      const id = `${m.kind}/${m.metadata.name}`;
      if (m.kind === 'Deployment' || m.kind === 'StatefulSet' || m.kind === 'PodDisruptionBudget')
        selectors.push([id, m.spec.selector.matchLabels]);
      if (m.kind === 'Service') selectors.push([id, m.spec.selector]);
      if (m.kind === 'NetworkPolicy') {
        selectors.push([id, m.spec.podSelector.matchLabels]);
        for (const rule of m.spec.ingress ?? [])
          for (const peer of rule.from ?? [])
            if (peer.podSelector) selectors.push([`${id} ingress from`, peer.podSelector.matchLabels]);
      }
    }
    const owner = (id: string): string =>
      id.includes('ingress from')
        ? 'audit-auditlog-shipper'
        : /-redis\b/.test(id)
          ? 'audit-auditlog-shipper-redis'
          : /-simulator\b/.test(id)
            ? 'audit-auditlog-shipper-simulator'
            : 'audit-auditlog-shipper';
    const wrong = selectors
      .map(([id, selector]) => [id, podsOf(selector)] as const)
      .filter(([id, pods]) => pods.length !== 1 || pods[0] !== owner(id));
    expect(wrong).toEqual([]);
    expect(selectors.length).toBeGreaterThan(10);
    // The ServiceMonitor selects only the shipper's Services.
    const monitor = find(everything, 'ServiceMonitor', 'audit-auditlog-shipper');
    const services = everything
      .filter(
        (m) => m.kind === 'Service' && matches(monitor.spec.selector.matchLabels, m.metadata.labels ?? {}),
      )
      .map((m) => m.metadata.name);
    expect(services.sort()).toEqual(['audit-auditlog-shipper', 'audit-auditlog-shipper-otlp']);
  });

  it('the bundled Redis: pinned image, password from a generated Secret, AOF on a PVC, probes', () => {
    const manifests = render([join(examplesDir, 'stackit-key-file.yaml')]);
    const redis = find(manifests, 'StatefulSet', 'audit-auditlog-shipper-redis');
    const container = redis.spec.template.spec.containers[0];
    expect(container.image).toMatch(/^docker\.io\/library\/redis:\d+\.\d+\.\d+-alpine$/);
    expect(container.args).toEqual(
      expect.arrayContaining([
        '--appendonly',
        'yes',
        '--maxmemory-policy',
        'noeviction',
        '$(REDIS_PASSWORD)',
      ]),
    );
    expect(container.livenessProbe.exec.command).toEqual(['redis-cli', 'ping']);
    expect(container.readinessProbe).toBeDefined();
    expect(redis.spec.volumeClaimTemplates[0].metadata.name).toBe('data');
    const secret = find(manifests, 'Secret', 'audit-auditlog-shipper-redis');
    expect(Buffer.from(secret.data?.password ?? '', 'base64').toString()).toMatch(/^[A-Za-z0-9]{32}$/);
    const digest = `sha256:${'a'.repeat(64)}`;
    const pinned = render(
      [join(examplesDir, 'stackit-key-file.yaml')],
      [`redis.bundled.image.digest=${digest}`],
    );
    expect(
      find(pinned, 'StatefulSet', 'audit-auditlog-shipper-redis').spec.template.spec.containers[0].image,
    ).toBe(`docker.io/library/redis@${digest}`);
  });

  it('a changed Secret or config rolls the pods (checksum annotations)', () => {
    const annotations = (sets: string[]) =>
      find(render([join(examplesDir, 'stackit.yaml')], sets), 'Deployment', 'audit-auditlog-shipper').spec
        .template.metadata.annotations as Record<string, string>;
    const before = annotations([]);
    const rotated = annotations(['secrets.data.STACKIT_TOKEN=rotated']);
    expect(rotated['checksum/secret']).not.toBe(before['checksum/secret']);
    expect(rotated['checksum/config']).toBe(before['checksum/config']);
    const reconfigured = annotations(['config.sinks[0].url=https://loki2.example.com']);
    expect(reconfigured['checksum/config']).not.toBe(before['checksum/config']);
  });

  it('extension points reach the pod spec', () => {
    const manifests = render([join(examplesDir, 'production.yaml'), join(examplesDir, 'csi-secrets.yaml')]);
    const pod = find(manifests, 'Deployment', 'audit-auditlog-shipper').spec.template;
    expect(pod.metadata.labels.team).toBe('platform');
    expect(pod.metadata.annotations['example.com/team']).toBe('platform');
    expect(pod.spec.priorityClassName).toBe('system-cluster-critical');
    expect(pod.spec.topologySpreadConstraints[0].topologyKey).toBe('topology.kubernetes.io/zone');
    const shipper = pod.spec.containers[0];
    expect(shipper.image).toBe(`ghcr.io/auditlog-shipper/auditlog-shipper@sha256:${'0'.repeat(64)}`);
    expect(shipper.env).toEqual(expect.arrayContaining([{ name: 'LOG_LEVEL', value: 'info' }]));
    expect(shipper.envFrom).toEqual(expect.arrayContaining([{ secretRef: { name: 'audit-redis' } }]));
    expect(shipper.volumeMounts).toEqual(
      expect.arrayContaining([{ name: 'secrets-store', mountPath: '/mnt/secrets-store', readOnly: true }]),
    );
    expect(pod.spec.volumes.map((v: { name: string }) => v.name)).toContain('secrets-store');
    expect(shipper.livenessProbe).toMatchObject({ periodSeconds: 20, timeoutSeconds: 3 });

    const defaults = find(render(), 'Deployment', 'audit-auditlog-shipper').spec.template.spec;
    expect(
      defaults.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm
        .topologyKey,
    ).toBe('kubernetes.io/hostname');
    expect(find(render(), 'PodDisruptionBudget', 'audit-auditlog-shipper').spec).toMatchObject({
      maxUnavailable: 1,
    });
    const existing = render([join(examplesDir, 'stackit.yaml')], ['existingConfigMap=my-config']);
    expect(existing.filter((m) => m.kind === 'ConfigMap')).toEqual([]);
    expect(
      find(existing, 'Deployment', 'audit-auditlog-shipper').spec.template.spec.volumes.find(
        (v: { name: string }) => v.name === 'config',
      ).configMap.name,
    ).toBe('my-config');
  });

  it('the PVC example mounts the claim instead of the emptyDir', () => {
    const pod = find(
      render([join(examplesDir, 'file-archive-pvc.yaml')]),
      'Deployment',
      'audit-auditlog-shipper',
    ).spec.template.spec;
    expect(pod.volumes.find((v: { name: string }) => v.name === 'data')).toEqual({
      name: 'data',
      persistentVolumeClaim: { claimName: 'audit-archive' },
    });
  });

  it('ServiceMonitor and PrometheusRule extension points', () => {
    const manifests = render([join(examplesDir, 'monitoring.yaml')]);
    const monitor = find(manifests, 'ServiceMonitor', 'audit-auditlog-shipper');
    expect(monitor.metadata.namespace).toBe('monitoring');
    expect(monitor.spec.namespaceSelector).toEqual({ matchNames: ['audit'] });
    expect(monitor.spec.endpoints[0].scrapeTimeout).toBe('10s');
    expect(monitor.spec.endpoints[0].relabelings).toEqual([
      { targetLabel: 'job', replacement: 'auditlog-shipper' },
      { targetLabel: 'cluster', replacement: 'prod-eu01' },
    ]);
    expect(monitor.spec.endpoints[0].metricRelabelings[0].action).toBe('drop');
    const rules = find(manifests, 'PrometheusRule', 'audit-auditlog-shipper').spec.groups.flatMap(
      (g: { rules: Array<{ alert?: string }> }) => g.rules.map((r) => r.alert),
    );
    expect(rules).not.toContain('AuditlogOutboxBacklog');
    expect(rules).toContain('AuditlogShipperTooFewReplicas');
    expect(rules).toContain('AuditlogShipperDown');
  });

  it('Workload Identity: ServiceAccount annotations, the email in the pods, the token projected on request', () => {
    const file = join(examplesDir, 'workload-identity.yaml');
    const manifests = render([file]);
    const account = find(manifests, 'ServiceAccount', 'audit-auditlog-shipper');
    expect(account.metadata).toMatchObject({
      annotations: {
        'workload-identity.stackit.cloud/service-account-email': 'auditlog-shipper@sa.stackit.cloud',
      },
    });
    const pod = find(manifests, 'Deployment', 'audit-auditlog-shipper').spec.template.spec;
    expect(pod.containers[0].env).toEqual(
      expect.arrayContaining([
        { name: 'STACKIT_SERVICE_ACCOUNT_EMAIL', value: 'auditlog-shipper@sa.stackit.cloud' },
      ]),
    );
    expect(pod.volumes.map((v: { name: string }) => v.name)).not.toContain('stackit-federated-token');

    const projected = find(
      render([file], ['serviceAccount.workloadIdentity.projectToken=true']),
      'Deployment',
      'audit-auditlog-shipper',
    ).spec.template.spec;
    expect(
      projected.volumes.find((v: { name: string }) => v.name === 'stackit-federated-token').projected.sources,
    ).toEqual([
      {
        serviceAccountToken: {
          path: 'token',
          audience: 'sts.accounts.stackit.cloud',
          expirationSeconds: 3600,
        },
      },
    ]);
    for (const container of [...projected.initContainers, ...projected.containers]) {
      expect(container.volumeMounts).toEqual(
        expect.arrayContaining([
          {
            name: 'stackit-federated-token',
            mountPath: '/var/run/secrets/stackit.cloud/serviceaccount',
            readOnly: true,
          },
        ]),
      );
    }

    expect(() => render([file], ['serviceAccount.workloadIdentity.serviceAccountEmail='])).toThrow(
      /auth\.workloadIdentity.*serviceAccount\.workloadIdentity\.serviceAccountEmail/,
    );
  });

  it('the OTLP receiver: a Service, an https Ingress, and NOTES name the public URL', () => {
    const file = join(examplesDir, 'telemetry-router.yaml');
    const manifests = render([file]);
    const service = find(manifests, 'Service', 'audit-auditlog-shipper-otlp');
    expect(service.spec.ports).toEqual([{ name: 'otlp', port: 4318, targetPort: 'otlp', protocol: 'TCP' }]);
    const ingress = find(manifests, 'Ingress', 'audit-auditlog-shipper-otlp');
    expect(ingress.spec.tls).toEqual([{ hosts: ['audit-otlp.example.com'], secretName: 'audit-otlp-tls' }]);
    const install = run(['install', 'audit', chart, '--dry-run=client', '-f', file]);
    expect(install.stdout).toContain('https://audit-otlp.example.com/v1/logs');
    expect(() => render([file], ['receiver.ingress.tlsSecretName='])).toThrow(
      /receiver\.ingress\.tlsSecretName/,
    );
    // The Service's ports are the provider's: a mismatch fails at template time, gRPC gets its port.
    const provider = valuesFile(
      'push-provider.yaml',
      'config:\n  providers:\n    - name: push\n      type: stackit-telemetry\n' +
        '      listen: { port: 4319, grpcPort: 4317 }\n  sinks: [{ name: o, type: stdout }]\nredis: { url: "redis://r:6379" }\n',
    );
    expect(() => render([file, provider])).toThrow(
      /provider push listens on port 4319.*Set receiver\.port=4319/,
    );
    expect(() => render([file, provider], ['receiver.port=4319'])).toThrow(/Set receiver\.grpcPort=4317/);
    const grpc = render([file, provider], ['receiver.port=4319', 'receiver.grpcPort=4317']);
    expect(
      find(grpc, 'Service', 'audit-auditlog-shipper-otlp').spec.ports.map((p: { port: number }) => p.port),
    ).toEqual([4319, 4317]);
    // The Gateway API instead of an Ingress.
    const gatewayFile = join(examplesDir, 'telemetry-router-gateway.yaml');
    const route = find(render([gatewayFile]), 'HTTPRoute', 'audit-auditlog-shipper-otlp');
    expect(route.spec).toMatchObject({
      parentRefs: [{ name: 'public', namespace: 'gateway-system', sectionName: 'https' }],
      hostnames: ['audit-otlp.example.com'],
      rules: [{ backendRefs: [{ name: 'audit-auditlog-shipper-otlp', port: 4318 }] }],
    });
    const viaGateway = run(['install', 'audit', chart, '--dry-run=client', '-f', gatewayFile]);
    expect(viaGateway.stdout).toContain('https://audit-otlp.example.com/v1/logs');
    expect(() => render([gatewayFile], ['receiver.httpRoute.parentRefs=null'])).toThrow(
      /receiver\.httpRoute\.parentRefs/,
    );
    const disabled = run(['install', 'audit', chart, '--dry-run=client', '-f', provider]);
    expect(disabled.stdout).toContain(
      'WARNING: provider push receives OTLP pushes, but receiver.enabled is false',
    );
  });
});
