import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/load.ts';
import { makeScopeIds } from '../../src/simulator/index.ts';

const root = new URL('../..', import.meta.url).pathname;
const MAIN = join(root, 'src/cli/main.ts');
interface Service {
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: Record<string, unknown>;
}
const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8')) as {
  services: Record<string, Service>;
};
const dockerCompose = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' }).status === 0;
if (!dockerCompose)
  console.warn(
    'SKIPPED: `docker compose config` (no compose plugin here); the stack is checked file by file below',
  );

describe('docker-compose stack', () => {
  it('has the whole stack: Redis, simulator, shipper, Loki, OpenSearch, MinIO, Prometheus, Grafana', () => {
    expect(Object.keys(compose.services)).toEqual(
      expect.arrayContaining([
        'redis',
        'simulator',
        'shipper',
        'loki',
        'opensearch',
        'minio',
        'prometheus',
        'grafana',
      ]),
    );
    const redis = compose.services.redis?.command ?? [];
    expect(redis.join(' ')).toContain('--appendonly yes');
    expect(redis.join(' ')).toContain('--maxmemory-policy noeviction');
  });

  it('mounts only files that exist', () => {
    const mounts = Object.values(compose.services).flatMap((s) => s.volumes ?? []);
    const hostPaths = mounts.map((m) => m.split(':')[0] as string).filter((p) => p.startsWith('./'));
    expect(hostPaths.length).toBeGreaterThan(4);
    for (const path of hostPaths) expect(existsSync(join(root, path)), path).toBe(true);
  });

  it('gives the shipper a config that validates with the environment compose sets', () => {
    const shipper = compose.services.shipper as Service;
    const result = loadConfig(
      { path: join(root, 'deploy/compose/shipper.yaml') },
      { env: shipper.environment ?? {} },
    );
    expect(result.ok ? 'ok' : result.error.format()).toBe('ok');
    if (!result.ok) return;
    expect(result.config.sinks.map((s) => s.type).sort()).toEqual(['file', 'loki', 'opensearch', 's3']);
    expect(result.config.daemon.redis.url).toBe('redis://redis:6379');
    // The STACKIT scopes are the ones the simulator service serves (seed 1, three projects).
    const projects = result.config.scopes.filter((s) => s.providerType === 'stackit').map((s) => s.ref.id);
    expect(projects.sort()).toEqual(makeScopeIds(1, 3).sort());
  });

  it('runs the simulator service with arguments the CLI accepts', async () => {
    const args = (compose.services.simulator?.command ?? []).map((a, i, all) =>
      all[i - 1] === '--port' ? '0' : a,
    );
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`simulator did not start: ${out}`)), 120_000);
      child.stdout.on('data', () => {
        if (out.includes('listening on')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('exit', (code) => reject(new Error(`simulator exited ${code}: ${out}`)));
    });
    child.kill('SIGTERM');
    expect(out).toContain('cloudscale-1');
  });

  it('has Prometheus scrape the shipper with the shipped alert rules, and Grafana provisioned', () => {
    const prometheus = parse(readFileSync(join(root, 'deploy/compose/prometheus.yml'), 'utf8'));
    expect(prometheus.scrape_configs[0].static_configs[0].targets).toEqual(['shipper:9464']);
    expect(prometheus.scrape_configs[0].job_name).toBe('auditlog-shipper');
    expect(compose.services.prometheus?.volumes).toContain(
      './deploy/prometheus/alerts.yaml:/etc/prometheus/alerts.yaml:ro',
    );
    expect(compose.services.grafana?.volumes).toContain('./deploy/grafana:/var/lib/grafana/dashboards:ro');
  });

  it.skipIf(!dockerCompose)('passes `docker compose config`', () => {
    const result = spawnSync('docker', ['compose', 'config', '-q'], { cwd: root, encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
  });
});
