import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../../src/config/load.ts';

const entry = fileURLToPath(new URL('../fixtures/simulate-cli.ts', import.meta.url));

describe('auditlog-shipper simulate --cloudscale', () => {
  it('serves cloudscale projects with a token each and prints a config that loads', async () => {
    const child = spawn(
      process.execPath,
      [entry, 'simulate', '--port', '0', '--scopes', '1', '--cloudscale', '2'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      for (let i = 0; i < 200 && !/project: cloudscale-2\n.*\n.*SIM_CLOUDSCALE_TOKEN_2/.test(out); i++) {
        await new Promise((r) => setTimeout(r, 25));
      }
      const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1] as string;
      const tokens = Object.fromEntries(
        [...out.matchAll(/^export (SIM_\w+)=(\S+)$/gm)].map((m) => [m[1], m[2]]),
      );
      expect(Object.keys(tokens)).toEqual(['SIM_TOKEN', 'SIM_CLOUDSCALE_TOKEN_1', 'SIM_CLOUDSCALE_TOKEN_2']);

      const snippet = out.slice(out.indexOf('providers:'));
      const doc = parse(snippet) as { providers: unknown[] };
      expect(doc.providers[1]).toEqual({
        name: 'sim-cloudscale',
        type: 'cloudscale',
        apiUrl: url,
        allowInsecureHttp: true,
      });
      const loaded = loadConfig(
        { text: `${snippet}sinks:\n  - name: out\n    type: stdout\n`, origin: 'snippet' },
        { env: tokens },
      );
      if (!loaded.ok) throw new Error(loaded.error.format());
      expect(loaded.config.scopes.map((s) => s.key).slice(1)).toEqual([
        'cloudscale:project:cloudscale-1',
        'cloudscale:project:cloudscale-2',
      ]);

      const reply = await fetch(`${url}/v1/project-logs`, {
        headers: { authorization: `Bearer ${tokens.SIM_CLOUDSCALE_TOKEN_2}` },
      });
      expect(reply.status).toBe(200);
      expect(((await reply.json()) as { results: unknown[] }).results.length).toBeGreaterThan(0);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
