import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.ts';
import { findExecutable } from '../../src/daemon/redis-server.ts';

const root = new URL('../..', import.meta.url).pathname;
const chart = join(root, 'helm/auditlog-shipper');
const values = parse(readFileSync(join(chart, 'values.yaml'), 'utf8')) as Record<string, unknown>;
const schema = JSON.parse(readFileSync(join(chart, 'values.schema.json'), 'utf8'));
const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);

const helm = findExecutable('helm');
const kubeconform = findExecutable('kubeconform');
if (!helm) {
  console.warn(
    'SKIPPED: helm lint / helm template / Kubernetes schema validation: no `helm` binary on PATH (not packaged in Debian or npm here); the values schema, template references and config checks below still run',
  );
}

function at(path: string[]): unknown {
  return path.reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], values);
}

describe('Helm chart', () => {
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

  it('the default shipper config in values.yaml is valid for the shipper itself', () => {
    const result = loadConfig(
      { text: stringify(values.config), origin: 'values.yaml config' },
      { env: { STACKIT_TOKEN: 't' } },
    );
    expect(result.ok ? 'ok' : result.error.format()).toBe('ok');
  });

  it('every .Values path a template uses exists in values.yaml', () => {
    const missing: string[] = [];
    for (const file of readdirSync(join(chart, 'templates'))) {
      const text = readFileSync(join(chart, 'templates', file), 'utf8');
      for (const match of text.matchAll(/\.Values\.([A-Za-z0-9_.]+)/g)) {
        const path = (match[1] as string).split('.');
        if (at(path) === undefined) missing.push(`${file}: .Values.${match[1]}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('every template block is closed (no helm here to parse them)', () => {
    const unbalanced: string[] = [];
    for (const file of readdirSync(join(chart, 'templates'))) {
      const text = readFileSync(join(chart, 'templates', file), 'utf8');
      const actions = [...text.matchAll(/\{\{-?\s*(if|with|range|define|end)\b/g)].map((m) => m[1]);
      let depth = 0;
      for (const action of actions) {
        depth += action === 'end' ? -1 : 1;
        if (depth < 0) break;
      }
      if (depth !== 0)
        unbalanced.push(`${file}: ${depth > 0 ? `${depth} unclosed` : 'an end without a block'}`);
    }
    expect(unbalanced).toEqual([]);
  });

  it('ships the same alert rules and dashboard as deploy/', () => {
    expect(readFileSync(join(chart, 'files/alerts.yaml'), 'utf8')).toBe(
      readFileSync(join(root, 'deploy/prometheus/alerts.yaml'), 'utf8'),
    );
    expect(readFileSync(join(chart, 'files/dashboard.json'), 'utf8')).toBe(
      readFileSync(join(root, 'deploy/grafana/auditlog-shipper.json'), 'utf8'),
    );
  });

  it.skipIf(!helm)('lints and renders with every feature on, into manifests Kubernetes accepts', () => {
    const lint = spawnSync(helm as string, ['lint', chart, '--strict'], { encoding: 'utf8' });
    expect(lint.status, lint.stdout + lint.stderr).toBe(0);
    const features = [
      'metrics.serviceMonitor.enabled=true',
      'metrics.prometheusRule.enabled=true',
      'metrics.grafanaDashboard.enabled=true',
      'autoscaling.enabled=true',
      'networkPolicy.enabled=true',
      'redis.embedded.enabled=true',
    ].flatMap((f) => ['--set', f]);
    const rendered = spawnSync(helm as string, ['template', 'audit', chart, ...features], {
      encoding: 'utf8',
    });
    expect(rendered.status, rendered.stderr).toBe(0);
    const kinds = rendered.stdout
      .split(/^---$/m)
      .map((doc) => (parse(doc) as { kind?: string } | null)?.kind);
    expect(kinds).toEqual(
      expect.arrayContaining([
        'Deployment',
        'ConfigMap',
        'Secret',
        'Service',
        'ServiceMonitor',
        'PrometheusRule',
        'PodDisruptionBudget',
        'HorizontalPodAutoscaler',
        'NetworkPolicy',
        'StatefulSet',
      ]),
    );
    if (!kubeconform) {
      console.warn('SKIPPED: Kubernetes schema validation of the rendered chart: no `kubeconform` on PATH');
      return;
    }
    const check = spawnSync(kubeconform, ['-strict', '-ignore-missing-schemas', '-summary', '-'], {
      input: rendered.stdout,
      encoding: 'utf8',
    });
    expect(check.status, check.stdout + check.stderr).toBe(0);
  });
});
