import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { findExecutable, freePort } from '../../src/daemon/redis-server.ts';
import { waitFor } from '../support/daemon.ts';
import { type Scenario, startScenario } from '../support/scenario.ts';

const root = new URL('../..', import.meta.url).pathname;
const rulesDir = join(root, 'deploy/prometheus');
const promtool = findExecutable('promtool');

interface AlertRule {
  alert: string;
  annotations: Record<string, string>;
}
const alertRules: AlertRule[] = (
  parse(readFileSync(join(rulesDir, 'alerts.yaml'), 'utf8')) as { groups: Array<{ rules: AlertRule[] }> }
).groups.flatMap((g) => g.rules);
const ruleTests = parse(readFileSync(join(rulesDir, 'alerts.test.yaml'), 'utf8')) as {
  tests: Array<{ alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }>;
};

/** GitHub's anchor for a Markdown heading. */
function anchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replaceAll(' ', '-');
}

describe('alert rules', () => {
  it('every alert is expected to fire in at least one promtool test case', () => {
    const fired = new Set(
      ruleTests.tests.flatMap((t) =>
        t.alert_rule_test.filter((c) => c.exp_alerts.length > 0).map((c) => c.alertname),
      ),
    );
    expect(alertRules.map((r) => r.alert).filter((name) => !fired.has(name))).toEqual([]);
  });

  it('every alert has a runbook_url pointing at a section of docs/operations.md', () => {
    const operations = readFileSync(join(root, 'docs/operations.md'), 'utf8');
    const anchors = new Set([...operations.matchAll(/^#+ (.+)$/gm)].map((m) => anchor(m[1] as string)));
    const prefix = 'https://github.com/auditlog-shipper/auditlog-shipper/blob/main/docs/operations.md#';
    const broken = alertRules
      .filter((r) => {
        const url = r.annotations.runbook_url ?? '';
        return !url.startsWith(prefix) || !anchors.has(url.slice(prefix.length));
      })
      .map((r) => `${r.alert}: ${r.annotations.runbook_url}`);
    expect(broken).toEqual([]);
  });
});
const prometheusBinary = findExecutable('prometheus');
if (!promtool || !prometheusBinary) {
  console.warn(
    'SKIPPED: Prometheus tests need Debian\'s "prometheus" package (prometheus, promtool); scripts/test.sh installs it as root',
  );
}

let scenario: Scenario | undefined;
let prometheus: ChildProcess | undefined;
afterEach(async () => {
  prometheus?.kill('SIGTERM');
  await scenario?.close();
  scenario = undefined;
});

describe.skipIf(!promtool || !prometheusBinary)('Prometheus', () => {
  it('the alert rules load and their unit tests pass (promtool)', () => {
    const check = spawnSync(promtool as string, ['check', 'rules', 'alerts.yaml'], {
      cwd: rulesDir,
      encoding: 'utf8',
    });
    expect(check.status, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toContain(`SUCCESS: ${alertRules.length} rules found`);
    const unit = spawnSync(promtool as string, ['test', 'rules', 'alerts.test.yaml'], {
      cwd: rulesDir,
      encoding: 'utf8',
    });
    expect(unit.status, unit.stdout + unit.stderr).toBe(0);
  });

  it('a real Prometheus scrapes the daemon, the alert rules evaluate, and promtool finds the metrics well-formed', async () => {
    scenario = await startScenario({ projects: 2, eventsPerMinute: 120, historyMs: 60_000 });
    const s = scenario;
    const metricsPort = await freePort();
    const daemon = s.daemon(await s.config({ extraDaemon: '' }), { METRICS_PORT: String(metricsPort) });
    const promPort = await freePort();
    await writeFile(
      join(s.dir, 'prometheus.yml'),
      `global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: [${join(rulesDir, 'alerts.yaml')}]
scrape_configs:
  - job_name: auditlog-shipper
    static_configs: [{ targets: ['127.0.0.1:${metricsPort}'] }]
`,
    );
    prometheus = spawn(
      prometheusBinary as string,
      [
        `--config.file=${join(s.dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(s.dir, 'prometheus')}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
      ],
      { stdio: 'ignore' },
    );
    const query = async (
      q: string,
    ): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> => {
      const response = await fetch(
        `http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`,
      );
      const body = (await response.json()) as {
        data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
      };
      return body.data.result;
    };
    await waitFor(
      'Prometheus to have scraped committed events',
      async () => {
        try {
          const committed = await query('sum(auditlog_events_committed_total)');
          return Number(committed[0]?.value[1] ?? 0) > 0;
        } catch {
          return false;
        }
      },
      30_000,
      500,
    );
    expect((await query('up{job="auditlog-shipper"}'))[0]?.value[1]).toBe('1');
    // The lag gauges are read from Redis at scrape time: a scope appears once its first poll has
    // committed, which can be a scrape after the first committed events.
    const expectedScopes = s.projects.map((id) => `stackit:project:${id}`).sort();
    let lag: Awaited<ReturnType<typeof query>> = [];
    await waitFor(
      'Prometheus to have the checkpoint lag of every scope',
      async () => {
        lag = await query('auditlog_checkpoint_lag_seconds');
        return lag.length >= expectedScopes.length;
      },
      30_000,
      500,
    );
    expect(lag.map((r) => r.metric.scope).sort()).toEqual(expectedScopes);
    const rules = (await (await fetch(`http://127.0.0.1:${promPort}/api/v1/rules`)).json()) as {
      data: { groups: Array<{ rules: Array<{ name: string; health: string }> }> };
    };
    const loaded = rules.data.groups.flatMap((g) => g.rules);
    expect(loaded).toHaveLength(alertRules.length);
    expect(loaded.every((r) => r.health === 'ok')).toBe(true);

    const scrape = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    // The whole default scrape, prom-client's process metrics included, passes promtool's lint.
    const lint = spawnSync(promtool as string, ['check', 'metrics'], { input: scrape, encoding: 'utf8' });
    expect(`${lint.stdout}${lint.stderr}`.trim()).toBe('');
    expect(lint.status).toBe(0);
    expect(scrape).toMatch(
      /^auditlog_build_info\{version="[^"]+",revision="[^"]+",node_version="24\.[^"]+"\} 1$/m,
    );
    daemon.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
  }, 90_000);
});
