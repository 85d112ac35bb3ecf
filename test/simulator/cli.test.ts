import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configSnippet, parseBudget } from '../../src/cli/commands/simulate.ts';
import { makeScopeIds } from '../../src/simulator/index.ts';

const entry = fileURLToPath(new URL('./fixtures/simulate-cli.ts', import.meta.url));

function run(args: string[]) {
  const child = spawn(process.execPath, [entry, 'simulate', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const output = async (pattern: RegExp): Promise<string> => {
    for (let i = 0; i < 200 && !pattern.test(stdout); i++) await new Promise((r) => setTimeout(r, 25));
    return stdout;
  };
  return { child, exited, output, stderr: () => stderr };
}

describe('auditlog-shipper simulate', () => {
  it('prints URL, token, scopes and a config snippet, serves the API, and exits 0 on SIGTERM', async () => {
    const proc = run([
      '--port',
      '0',
      '--scopes',
      '2',
      '--seed',
      '5',
      '--token',
      't0k3n',
      '--budget',
      '100/60s',
    ]);
    try {
      const out = await proc.output(
        /project: [0-9a-f-]{36}\n {2}- provider: sim\n {4}project: [0-9a-f-]{36}\n/,
      );
      const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
      expect(url).toBeDefined();
      expect(out).toContain('token:   t0k3n');
      expect(out).toContain('export SIM_TOKEN=t0k3n');
      const ids = makeScopeIds(5, 2);
      for (const id of ids) expect(out).toContain(`project ${id}`);

      const yamlText = out.slice(out.indexOf('providers:'));
      const doc = parse(yamlText) as { providers: unknown[]; scopes: unknown[] };
      const tokenRef = '${SIM_TOKEN}';
      expect(doc.providers).toEqual([
        {
          name: 'sim',
          type: 'stackit',
          auditLogUrl: url,
          allowInsecureHttp: true,
          auth: { token: tokenRef },
        },
      ]);
      expect(doc.scopes).toEqual(ids.map((project) => ({ provider: 'sim', project })));

      const now = Date.now();
      const q = `start-time-range=${new Date(now - 600_000).toISOString()}&end-time-range=${new Date(now).toISOString()}`;
      const ok = await fetch(`${url}/v2/projects/${ids[0]}?${q}`, {
        headers: { authorization: 'Bearer t0k3n' },
      });
      expect(ok.status).toBe(200);
      expect(Array.isArray(((await ok.json()) as { items: unknown }).items)).toBe(true);
      const denied = await fetch(`${url}/v2/projects/${ids[0]}?${q}`, {
        headers: { authorization: 'Bearer x' },
      });
      expect(denied.status).toBe(401);

      proc.child.kill('SIGTERM');
      expect(await proc.exited).toBe(0);
      expect(proc.stderr()).toContain('simulator stopped');
    } finally {
      proc.child.kill('SIGKILL');
    }
  });

  it('serves explicit --project UUIDs and refuses bad flags', async () => {
    const id = '0d6b1f8e-4c2a-4e7b-9a31-2b7c5d9e8f10';
    const proc = run(['--port', '0', '--project', id, '--late-max', '5m', '--rate', '0']);
    try {
      const out = await proc.output(/project: [0-9a-f-]{36}\n/);
      expect(out).toContain(`project ${id}`);
      expect(out).toContain('0 events/min');
      expect(out).toContain('late up to 5m');
      proc.child.kill('SIGINT');
      expect(await proc.exited).toBe(0);
    } finally {
      proc.child.kill('SIGKILL');
    }

    for (const args of [
      ['--scopes', '2', '--project', id],
      ['--project', 'nope'],
      ['--late-max', '5'],
      ['--budget', '60'],
      ['--error-rate', '1.5'],
    ]) {
      const bad = run(['--port', '0', ...args]);
      expect(await bad.exited, args.join(' ')).not.toBe(0);
    }
  });

  it('parses budgets and writes a snippet for any scope kind', () => {
    expect(parseBudget('60/60s')).toEqual({ capacity: 60, refillPerSecond: 1 });
    expect(parseBudget('10/1m')).toEqual({ capacity: 10, refillPerSecond: 10 / 60 });
    expect(() => parseBudget('0/1s')).toThrow();
    expect(configSnippet('http://127.0.0.1:1', [{ kind: 'folder', id: 'f', eventsPerMinute: 1 }])).toContain(
      '  - provider: sim\n    folder: f\n',
    );
  });
});
