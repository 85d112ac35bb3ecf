import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { Metrics } from '../../src/observability/metrics.ts';

const root = new URL('../..', import.meta.url).pathname;

/** Every metric the shipper exports, with the suffixes Prometheus adds to histograms. */
async function exportedNames(): Promise<Set<string>> {
  const metrics = new Metrics({ processMetrics: true });
  const names = new Set<string>();
  for (const metric of await metrics.registry.getMetricsAsJSON()) {
    names.add(metric.name);
    if (String(metric.type) === 'histogram')
      for (const suffix of ['_bucket', '_sum', '_count']) names.add(metric.name + suffix);
  }
  return names;
}

function referencedMetrics(expr: string): string[] {
  return [...expr.matchAll(/\bauditlog_[a-z0-9_]+/g)].map((m) => m[0]);
}

describe('shipped dashboards and alerts', () => {
  it('the Grafana dashboard queries only metrics the shipper exports', async () => {
    const dashboard = JSON.parse(readFileSync(join(root, 'deploy/grafana/auditlog-shipper.json'), 'utf8'));
    const exprs: string[] = dashboard.panels.flatMap((p: { targets?: Array<{ expr: string }> }) =>
      (p.targets ?? []).map((t) => t.expr),
    );
    expect(exprs.length).toBeGreaterThan(15);
    const names = await exportedNames();
    const unknown = exprs.flatMap(referencedMetrics).filter((name) => !names.has(name));
    expect(unknown).toEqual([]);
    expect(dashboard.uid).toBe('auditlog-shipper');
  });

  it('every dashboard query is filtered by the namespace and job variables, and shared gauges are not summed over replicas', () => {
    const dashboard = JSON.parse(readFileSync(join(root, 'deploy/grafana/auditlog-shipper.json'), 'utf8'));
    const variables = dashboard.templating.list.map((v: { name: string }) => v.name);
    expect(variables).toEqual(expect.arrayContaining(['datasource', 'namespace', 'job']));
    const exprs: string[] = dashboard.panels.flatMap((p: { targets?: Array<{ expr: string }> }) =>
      (p.targets ?? []).map((t) => t.expr),
    );
    const unfiltered = exprs.flatMap((expr) =>
      [...expr.matchAll(/\bauditlog_[a-z0-9_]+(\{[^}]*\})?/g)]
        .filter((m) => !m[1]?.includes('namespace=~"$namespace"') || !m[1].includes('job=~"$job"'))
        .map((m) => m[0]),
    );
    expect(unfiltered).toEqual([]);
    // Every replica reports the same shared gauges (read from Redis): a sum would multiply them.
    const shared = [
      'dead_letter_length',
      'outbox_length',
      'outbox_oldest_age_seconds',
      'checkpoint_lag_seconds',
    ];
    const summed = exprs.filter((expr) =>
      shared.some((name) => new RegExp(`^sum\\((?!max)[^(]*\\bauditlog_${name}`).test(expr)),
    );
    expect(summed).toEqual([]);
    expect(exprs).toContain(
      'sum(max by (namespace, job, sink) (auditlog_dead_letter_length{namespace=~"$namespace", job=~"$job"}))',
    );
  });

  it('the alert rules refer only to metrics the shipper exports', async () => {
    const rules = parse(readFileSync(join(root, 'deploy/prometheus/alerts.yaml'), 'utf8'));
    const exprs: string[] = rules.groups.flatMap((g: { rules: Array<{ expr: string }> }) =>
      g.rules.map((r) => String(r.expr)),
    );
    const names = await exportedNames();
    const unknown = exprs.flatMap(referencedMetrics).filter((name) => !names.has(name));
    expect(unknown).toEqual([]);
  });
});
